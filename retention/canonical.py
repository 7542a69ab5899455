"""Canonical JSON: the one byte form every hash, signature and content binding is taken of."""

from __future__ import annotations

import hashlib
import json
from typing import Any

# One encoder, made once: `json.dumps` with these arguments builds a new one on every call,
# which costs as much as encoding a row of the audit record (`audit verify` encodes millions).
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8 without escapes: equal values give equal bytes."""
    return _ENCODE(value).encode()


def canonical_hash(value: Any) -> str:
    """The hex sha256 of `value`'s canonical JSON."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
