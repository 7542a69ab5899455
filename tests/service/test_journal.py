"""journald: a priority before each line on the journal's own stream, the checkpoint as an entry."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from retention.audit.checkpoint import MESSAGE_ID, Checkpoint, log_checkpoint
from retention.sandbox.policies import THREE_ACTIONS
from retention.service import journal
from retention.service.logging import configure_logging

CHECKPOINT = Checkpoint(log_id="ab" * 16, rows=41, head="c" * 64, time="2026-11-23T00:00:00Z")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging changes the process's logging: put it back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level
        structlog.configure(**config)


def entry(datagram: bytes) -> dict[str, str]:
    """A native-protocol datagram read back: `KEY=value` lines and length-prefixed values."""
    fields, rest = {}, datagram
    while rest:
        line, _, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            rest = after
        else:
            (size,) = struct.unpack("<Q", after[:8])
            fields[line.decode()] = after[8 : 8 + size].decode()
            rest = after[8 + size + 1 :]
    return fields


def test_priorities_follow_syslog() -> None:
    assert [journal.priority(level) for level in (10, 20, 30, 40, 50)] == [7, 6, 4, 3, 2]
    assert journal.prefixed("a\nb", logging.WARNING) == "<4>a\n<4>b"


def test_a_stream_is_the_journals_only_when_journal_stream_names_its_device_and_inode(
    tmp_path: Path,
) -> None:
    with (tmp_path / "a").open("w") as first, (tmp_path / "b").open("w") as second:
        found = os.fstat(first.fileno())
        named = {"JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}"}
        assert journal.is_journal_stream(first, named)
        assert not journal.is_journal_stream(second, named)
        assert not journal.is_journal_stream(first, {})
        assert not journal.is_journal_stream(first, {"JOURNAL_STREAM": "garbage"})
        assert not journal.is_journal_stream(io.StringIO(), named)


def test_a_value_with_a_line_break_is_sent_with_its_length() -> None:
    sent = journal.encode_fields({"MESSAGE": "one\ntwo", "seq": 5, "signed": True, "x": None})
    assert entry(sent) == {"MESSAGE": "one\ntwo", "SEQ": "5", "SIGNED": "true"}


def test_the_checkpoint_line_is_also_a_journal_entry_with_its_message_id(
    notify_socket: tuple[str, socket.socket], restored_logging: None
) -> None:
    path, listener = notify_socket
    out = io.StringIO()
    configure_logging(json=True, stream=out, journal_socket=Path(path))
    log_checkpoint(CHECKPOINT, seq=42, path=Path("/var/lib/retention/audit-checkpoints.jsonl"))
    structlog.get_logger("retention.test").warning("not a checkpoint", message_id="other")
    fields = entry(listener.recv(65536))
    assert fields["MESSAGE_ID"] == journal.MESSAGE_IDS[MESSAGE_ID]
    assert len(fields["MESSAGE_ID"]) == 32
    int(fields["MESSAGE_ID"], 16)
    assert fields["PRIORITY"] == "6"
    assert fields["SEQ"] == "42"
    assert fields["ROWS"] == "41"
    assert fields["HEAD"] == "c" * 64
    assert fields["LOG_ID"] == "ab" * 16
    assert fields["MESSAGE"].startswith("audit_checkpoint ")
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.recv(65536)  # the other line went to the stream only
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["message_id"] == MESSAGE_ID  # the JSON field stays
    assert not out.getvalue().startswith("<")  # a buffer is never the journal's stream


def test_without_the_journals_socket_the_checkpoint_line_is_only_written(
    tmp_path: Path, restored_logging: None
) -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out, journal_socket=tmp_path / "absent")
    log_checkpoint(CHECKPOINT, seq=42, path=tmp_path / "checkpoints.jsonl")
    assert json.loads(out.getvalue())["event"] == "audit_checkpoint"


@pytest.mark.e2e
def test_a_run_under_journal_stream_prefixes_each_line_with_its_priority(
    tmp_path: Path,
) -> None:
    """A real `retention run --yes` whose stderr is the file JOURNAL_STREAM names: its warning
    (the refused preflight), its checkpoint (info) and its error each carry their priority."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policies.yaml").write_text(THREE_ACTIONS)
    stderr_path, stdout_path = tmp_path / "stderr", tmp_path / "stdout"
    with stderr_path.open("w") as stderr, stdout_path.open("w") as stdout:
        found = os.fstat(stderr.fileno())
        env: dict[str, Any] = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")},
            "JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}",
            # Nothing listens on port 1: the run is refused before any removal, then fails.
            "RETENTION_API_BASE_URL": "http://127.0.0.1:1/G2M/rest",
            "RETENTION_TOKEN_URL": "http://127.0.0.1:1/oauth/token",
            "RETENTION_CLIENT_ID": "client",
            "RETENTION_CLIENT_SECRET": "not-a-real-client-secret",
            "RETENTION_REFRESH_TOKEN": "not-a-real-refresh-token",
            "RETENTION_STATE_DIR": str(tmp_path / "state"),
            "RETENTION_POLICY_DIR": str(policies),
        }
        done = subprocess.run(
            [sys.executable, "-m", "retention", "run", "--yes"],
            stdout=stdout,
            stderr=stderr,
            env=env,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    lines = stderr_path.read_text().splitlines()
    assert lines
    assert all(line[:3] in {"<6>", "<4>", "<3>"} for line in lines), lines
    by_event = {
        json.loads(line[3:])["event"]: line[:3] for line in lines if line[3:].startswith("{")
    }
    assert by_event["audit_checkpoint"] == "<6>"
    assert by_event["preflight check refused the run"] == "<4>"
    assert any(line.startswith("<3>error: ") for line in lines)
    assert "<" not in stdout_path.read_text()[:1]


def test_the_documented_journalctl_lines_name_the_message_id_the_code_sends() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    for page in ("deploy.md", "audit.md"):
        assert (
            f"journalctl MESSAGE_ID={journal.MESSAGE_IDS[MESSAGE_ID]}" in (docs / page).read_text()
        )
    assert "journalctl -u retention -p warning" in (docs / "deploy.md").read_text()
