"""The public keys that verify checkpoints: the signer's own and earlier ones kept for rotation."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from retention.audit.checkpoint import Checkpoint, key_id, load_public_key
from retention.audit.store import AuditInputError


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Trusted Ed25519 public keys by key id; a checkpoint must verify under one of them."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.keys)

    @property
    def ids(self) -> list[str]:
        """The key ids, sorted."""
        return sorted(self.keys)

    def signer(self, sealed: Checkpoint) -> str | None:
        """The id of the key whose signature this checkpoint carries, or None if none verifies."""
        if not sealed.signature:
            return None
        named = self.keys.get(sealed.key_id or "")
        candidates = [named] if named is not None else list(self.keys.values())
        for key in candidates:
            if key is not None and sealed.signature_valid(key):
                return key_id(key)
        return None


def trusted_key_paths(setting: str | None) -> list[Path]:
    """RETENTION_TRUSTED_KEYS as paths: .pub files or folders, separated by `:` or `,`."""
    if not setting:
        return []
    parts = re.split(f"[,{re.escape(os.pathsep)}]", setting)
    return [Path(part.strip()) for part in parts if part.strip()]


def load_keyring(paths: Iterable[Path], extra: Iterable[Ed25519PublicKey] = ()) -> KeyRing:
    """Every key named by `paths` (a folder contributes its *.pub files), plus `extra`."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        if path.is_dir():
            files = sorted(path.glob("*.pub"))
            if not files:
                raise AuditInputError(
                    f"the folder {path} holds no .pub key",
                    hint="put the public keys written by `retention audit keygen` in it",
                )
        else:
            files = [path]
        for file in files:
            key = load_public_key(file)
            keys[key_id(key)] = key
    for key in extra:
        keys[key_id(key)] = key
    return KeyRing(keys)
