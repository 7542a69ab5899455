"""Checkpoints: head hash and row count, Ed25519-signed, kept in the log and in a file beside."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from retention.audit.store import AuditError, AuditInputError, canonical_json
from retention.files import read_bytes

PEM_MARKER = "-----BEGIN"
CHECKPOINT_FILE = "audit-checkpoints.jsonl"  # beside audit.db
# A stable field auditors search the journal for: `journalctl -o json | grep <this>`.
MESSAGE_ID = "goto-retention-checkpoint"
_log = structlog.get_logger("retention.audit")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A seal over rows 1..rows of one log, whose last row hashes to `head`."""

    log_id: str
    rows: int
    head: str
    time: str
    signature: str | None = None
    key_id: str | None = None

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers: canonical JSON of head, log_id, rows, time."""
        return canonical_json(
            {"head": self.head, "log_id": self.log_id, "rows": self.rows, "time": self.time}
        )

    def payload(self) -> dict[str, Any]:
        """The checkpoint as stored in the log row's data and in the checkpoint file."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Checkpoint:
        """Read back a payload; raises KeyError or TypeError when it is malformed."""
        if not isinstance(payload["rows"], int) or isinstance(payload["rows"], bool):
            raise TypeError("rows must be an integer")
        for name in ("log_id", "head", "time"):
            if not isinstance(payload[name], str):
                raise TypeError(f"{name} must be a string")
        for name in ("signature", "key_id"):
            if not isinstance(payload.get(name), str | None):
                raise TypeError(f"{name} must be a string or null")
        return cls(
            log_id=str(payload["log_id"]),
            rows=payload["rows"],
            head=str(payload["head"]),
            time=str(payload["time"]),
            signature=payload.get("signature"),
            key_id=payload.get("key_id"),
        )

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        """Whether this checkpoint carries a valid signature by `public_key`."""
        if not self.signature:
            return False
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short fingerprint naming a key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def seal(
    *, log_id: str, rows: int, head: str, time: str, key: Ed25519PrivateKey | None
) -> Checkpoint:
    """A checkpoint of this head, signed when a key is given."""
    unsigned = Checkpoint(log_id=log_id, rows=rows, head=head, time=time)
    if key is None:
        return unsigned
    signature = base64.b64encode(key.sign(unsigned.signed_bytes())).decode()
    return Checkpoint(
        log_id=log_id,
        rows=rows,
        head=head,
        time=time,
        signature=signature,
        key_id=key_id(key.public_key()),
    )


def load_signing_key(source: Path | str) -> Ed25519PrivateKey:
    """The Ed25519 private key from PEM text or from a file holding it (0600, e.g. a credential)."""
    if isinstance(source, str) and source.lstrip().startswith(PEM_MARKER):
        text, origin = source.encode(), "the signing_key setting"
    else:
        path = Path(source)
        origin = str(path)
        text = read_bytes(
            path,
            AuditInputError,
            f"cannot read the signing key {path}",
            "point RETENTION_SIGNING_KEY or the signing_key credential at a PEM file",
        )
    key = _parsed(lambda pem: serialization.load_pem_private_key(pem, password=None), text)
    if isinstance(key, Ed25519PrivateKey):
        return key
    raise AuditInputError(
        f"{origin} is not an unencrypted Ed25519 private key in PEM form",
        hint="create one with `retention audit keygen --out FILE`",
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (as written by `retention audit keygen`)."""
    data = read_bytes(path, AuditInputError, f"cannot read the public key {path}")
    key = _parsed(serialization.load_pem_public_key, data)
    if isinstance(key, Ed25519PublicKey):
        return key
    raise AuditInputError(
        f"{path} is not an Ed25519 public key in PEM form",
        hint="pass the .pub file written by `retention audit keygen`",
    )


def _parsed(load: Callable[[bytes], object], pem: bytes) -> object:
    """What `load` reads from `pem`; None when it cannot (malformed, unsupported, encrypted)."""
    try:
        return load(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None


def generate_key_pair(out: Path) -> tuple[Path, Ed25519PublicKey]:
    """Write a new private key to `out` (0600, never overwritten) and its public key to out.pub."""
    public_path = out.with_name(out.name + ".pub")
    for path in (out, public_path):
        if path.exists():
            raise AuditInputError(
                f"{path} already exists; refusing to overwrite a key",
                hint="choose another --out path, or move the old key away first",
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(out, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return public_path, key.public_key()


def _write_new(path: Path, content: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def append_to_file(path: Path, sealed: Checkpoint, *, seq: int) -> bytes:
    """Append one JSON line to the external checkpoint file, fsynced; returns the line."""
    line = canonical_json({**sealed.payload(), "seq": seq}) + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as exc:
        raise AuditError(
            f"the checkpoint was stored in the log but not in {path}: {exc.strerror}",
            hint="make the file writable, then run `retention audit checkpoint`",
        ) from exc
    return line


@dataclass(frozen=True, slots=True)
class CheckpointLines:
    """A checkpoint file as read: the good lines with their numbers, and the bad ones."""

    checkpoints: list[tuple[int, Checkpoint]]
    malformed: list[tuple[int, str]]

    def of_log(self, log_id: str | None) -> list[tuple[int, Checkpoint]]:
        """The checkpoints of one log (every line when the log id is unknown)."""
        return [(n, c) for n, c in self.checkpoints if log_id is None or c.log_id == log_id]


def read_checkpoint_file(path: Path) -> CheckpointLines:
    """Every checkpoint in a JSONL file with its line number; bad lines are kept as findings.

    Only a file that cannot be read at all raises AuditInputError: one garbage line must not
    hide the rest of the file from the check.
    """
    raw = read_bytes(
        path,
        AuditInputError,
        f"cannot read the checkpoint file {path}",
        "pass the audit-checkpoints.jsonl file kept beside (or away from) the log",
    )
    found: list[tuple[int, Checkpoint]] = []
    malformed: list[tuple[int, str]] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # A JSON value that is not an object fails from_payload with a TypeError.
            found.append((number, Checkpoint.from_payload(json.loads(line.decode("utf-8")))))
        except (ValueError, KeyError, TypeError) as exc:
            malformed.append((number, f"{type(exc).__name__}: {exc}"[:200]))
    return CheckpointLines(found, malformed)


def log_checkpoint(sealed: Checkpoint, *, seq: int, path: Path) -> None:
    """The checkpoint as a log line, so a journal elsewhere holds a third copy."""
    _log.info(
        "audit_checkpoint",
        message_id=MESSAGE_ID,
        log_id=sealed.log_id,
        seq=seq,
        rows=sealed.rows,
        head=sealed.head,
        time=sealed.time,
        signed=sealed.signature is not None,
        key_id=sealed.key_id,
        checkpoint_file=str(path),
    )
