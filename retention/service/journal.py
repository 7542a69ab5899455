"""journald's two languages: a `<N>` priority before each line, and native fields by datagram.

A service under systemd writes to a stream the journal reads; `JOURNAL_STREAM` (`DEVICE:INODE`)
names that stream, and journald takes a line's priority from a leading `<N>`. The prefix is
written only when the stream written to is that very one: the same output piped to a file or a
terminal stays clean. Some lines also go to the journal's own socket with fields of their own
(`MESSAGE_ID`), by the native protocol: `KEY=value` lines in one datagram, a value with a line
break as `KEY`, its length (64-bit little-endian) and the bytes.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
# syslog(3) priorities by the standard library's level numbers.
PRIORITIES = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
PRIORITY_BY_NAME = {
    "debug": 7,
    "info": 6,
    "warning": 4,
    "warn": 4,
    "error": 3,
    "exception": 3,
    "critical": 2,
}
_FIELD_NAME = re.compile(r"[^A-Z0-9_]")
# Lines that also go to the journal as entries of their own, by their JSON `message_id`: the
# journal's MESSAGE_ID is 128 bits in hex (`journalctl MESSAGE_ID=…`), fixed for ever.
MESSAGE_IDS = {"goto-retention-checkpoint": "a33aff617743431c804c6db7ebbbcde3"}


def priority(levelno: int) -> int:
    """The syslog priority of a logging level (levels between two take the lower one's)."""
    for level in sorted(PRIORITIES, reverse=True):
        if levelno >= level:
            return PRIORITIES[level]
    return PRIORITIES[logging.DEBUG]


def is_journal_stream(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether `stream` is the one `JOURNAL_STREAM` names (its device and inode)."""
    named = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = named.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # a stream without a descriptor (a test's buffer) is never the journal's
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def prefixed(text: str, levelno: int) -> str:
    """Every line of `text` with the priority prefix journald reads."""
    mark = f"<{priority(levelno)}>"
    return "\n".join(mark + line for line in text.split("\n"))


def field_name(key: str) -> str:
    """A journal field name for a log field: upper case, `_` for anything else, no leading `_`."""
    name = _FIELD_NAME.sub("_", key.upper()).lstrip("_")
    return name if name and not name[0].isdigit() else f"F_{name}"


def encode_fields(fields: Mapping[str, Any]) -> bytes:
    """The native protocol's datagram for `fields` (values as text; None fields left out)."""
    out = bytearray()
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value).lower() if isinstance(value, bool) else str(value)
        data = text.encode("utf-8")
        name = field_name(key).encode("ascii")
        if b"\n" in data:
            out += name + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name + b"=" + data + b"\n"
    return bytes(out)


def send(fields: Mapping[str, Any], path: Path | None = JOURNAL_SOCKET) -> bool:
    """Send one entry to the journal's socket when it exists; never raises (a log line must
    not fail the work it reports). Returns whether the journal took it."""
    if path is None or not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(encode_fields(fields), str(path))
    except OSError:
        return False
    return True
