"""Failpoints for crash tests: `RETENTION_FAILPOINTS="after_intent=3"` kills the process there.

Each named point counts its hits; on the given hit the process sends itself SIGKILL, exactly as
an external `kill -9` would, so nothing (no finally, no atexit, no flush) runs after it.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "RETENTION_FAILPOINTS"
_hits: Counter[str] = Counter()


def _armed() -> dict[str, int]:
    spec = os.environ.get(ENV, "")
    armed: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in spec.split(","))):
        name, _, count = part.partition("=")
        armed[name] = int(count or "1")
    return armed


def hit(name: str) -> None:
    """Count a pass through the named point; die there if it is armed for this hit."""
    if ENV not in os.environ:
        return
    _hits[name] += 1
    if _armed().get(name) == _hits[name]:
        os.kill(os.getpid(), signal.SIGKILL)
