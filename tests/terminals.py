"""A real terminal that reports 0 columns (a fresh pty's size), for output-width tests."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TextIO

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@dataclass
class Terminal:
    """The terminal's writing end as a text stream, and what was written to it."""

    stream: TextIO
    controller: int

    def read(self) -> str:
        """What was written so far, without colours and carriage returns."""
        self.stream.flush()
        chunks = []
        while select.select([self.controller], [], [], 0.5)[0]:
            chunks.append(os.read(self.controller, 65536))
        return _ANSI.sub("", b"".join(chunks).decode())


@contextlib.contextmanager
def zero_column_terminal() -> Iterator[Terminal]:
    """A pty whose size was never set: it reports 0 columns, as some consoles do."""
    controller, side = pty.openpty()
    assert os.get_terminal_size(side).columns == 0
    stream = os.fdopen(side, "w", encoding="utf-8")
    try:
        yield Terminal(stream, controller)
    finally:
        stream.close()
        os.close(controller)
