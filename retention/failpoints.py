"""Failpoints for crash tests: `RETENTION_FAILPOINTS="after_intent=3"` kills the process there.

Each named point counts its hits; on the given hit the process sends itself SIGKILL, exactly as
an external `kill -9` would, so nothing (no finally, no atexit, no flush) runs after it.

Points: `after_intent` (intent durable, no DELETE yet), `before_send` (about to send the
DELETE), `after_send` (a DELETE's answer arrived, not yet looked at), `after_response` (a DELETE
judged, outcome not yet recorded), `before_token_persist` (a rotated refresh token received, not
yet stored), `after_token_persist` (stored, the new access token not yet used). The client in
`goto/` calls in here too: this module is a leaf with no imports of the service.
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
