"""OpenSSH's SSHSIG signatures (`ssh-keygen -Y sign/verify`) over a plan's hash, Ed25519 keys.

The signed message is the plan hash as hex text, without a newline, in the namespace
`goto-retention-plan`: `printf %s HASH | ssh-keygen -Y verify -n goto-retention-plan ...`
accepts what `sign` makes, and `verify` accepts what `ssh-keygen -Y sign` makes. The format is
OpenSSH's PROTOCOL.sshsig; `cryptography` does the keys and the Ed25519 arithmetic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
import textwrap
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from retention.errors import InvalidInput
from retention.files import read_bytes

NAMESPACE = "goto-retention-plan"
KEY_TYPE = b"ssh-ed25519"
_MAGIC = b"SSHSIG"
_VERSION = 1
_HASHES = {b"sha512": hashlib.sha512, b"sha256": hashlib.sha256}
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"


class SignatureError(ValueError):
    """A signature that cannot be read or does not verify; the message says why."""


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class _Reader:
    """SSH wire-format fields read one after another from a byte string."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, count: int) -> bytes:
        if self.at + count > len(self.data):
            raise SignatureError("the signature is truncated")
        piece = self.data[self.at : self.at + count]
        self.at += count
        return piece

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.uint32())

    def done(self) -> bool:
        return self.at == len(self.data)


def public_blob(key: Ed25519PublicKey) -> bytes:
    """The key in SSH wire form (what allowed-signers lines and fingerprints are made of)."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return base64.b64decode(line.split()[1])


def fingerprint(key: Ed25519PublicKey) -> str:
    """OpenSSH's fingerprint: `SHA256:` and the unpadded base64 of the blob's SHA-256."""
    digest = hashlib.sha256(public_blob(key)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def openssh_line(key: Ed25519PublicKey) -> str:
    """`ssh-ed25519 AAAA…`, as an allowed-signers line or authorized_keys writes the key."""
    return key.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def key_from_blob(blob: bytes) -> Ed25519PublicKey:
    """An Ed25519 key from its SSH wire form; other key types are not accepted."""
    reader = _Reader(blob)
    kind = reader.string()
    if kind != KEY_TYPE:
        raise SignatureError(f"the key is {kind.decode(errors='replace')!r}, not ssh-ed25519")
    raw = reader.string()
    if len(raw) != 32 or not reader.done():
        raise SignatureError("the ssh-ed25519 key is malformed")
    return Ed25519PublicKey.from_public_bytes(raw)


def _signed_data(message: bytes, namespace: str, hash_name: bytes) -> bytes:
    digest = _HASHES[hash_name](message).digest()
    return (
        _MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_name) + _string(digest)
    )


def armor(blob: bytes) -> str:
    """The signature as `ssh-keygen -Y sign` writes it (base64 in 70-column lines)."""
    body = "\n".join(textwrap.wrap(base64.b64encode(blob).decode(), 70))
    return f"{_BEGIN}\n{body}\n{_END}\n"


def dearmor(text: str) -> bytes:
    """The signature blob of an armored signature."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if len(lines) < 3 or lines[0] != _BEGIN or lines[-1] != _END:
        raise SignatureError("not an armored SSH signature (-----BEGIN SSH SIGNATURE-----)")
    try:
        return base64.b64decode("".join(lines[1:-1]), validate=True)
    except binascii.Error:
        raise SignatureError("the signature's base64 is malformed") from None


def sign(key: Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE) -> str:
    """An armored SSHSIG signature of `message` (SHA-512, as ssh-keygen makes them)."""
    signature = key.sign(_signed_data(message, namespace, b"sha512"))
    blob = (
        _MAGIC
        + struct.pack(">I", _VERSION)
        + _string(public_blob(key.public_key()))
        + _string(namespace.encode())
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(KEY_TYPE) + _string(signature))
    )
    return armor(blob)


@dataclass(frozen=True)
class Verified:
    """A signature that verified: the key that made it."""

    key: Ed25519PublicKey

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def verify(armored: str, message: bytes, namespace: str = NAMESPACE) -> Verified:
    """The key whose signature over `message` in `namespace` this is; SignatureError if none."""
    reader = _Reader(dearmor(armored))
    if reader.take(6) != _MAGIC or reader.uint32() != _VERSION:
        raise SignatureError("not an SSHSIG signature of version 1")
    key = key_from_blob(reader.string())
    signed_namespace = reader.string().decode(errors="replace")
    reader.string()  # reserved
    hash_name = reader.string()
    wrapped = _Reader(reader.string())
    if not reader.done():
        raise SignatureError("the signature has trailing data")
    if signed_namespace != namespace:
        raise SignatureError(
            f"the signature is for namespace {signed_namespace!r}, not {namespace}"
        )
    if hash_name not in _HASHES:
        raise SignatureError(
            f"the signature's hash {hash_name.decode(errors='replace')!r} is unknown"
        )
    if wrapped.string() != KEY_TYPE:
        raise SignatureError("the signature is not an ssh-ed25519 signature")
    raw = wrapped.string()
    try:
        key.verify(raw, _signed_data(message, namespace, hash_name))
    except InvalidSignature:
        raise SignatureError("the signature does not verify over this plan's hash") from None
    return Verified(key)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted Ed25519 private key: OpenSSH's (`ssh-keygen -t ed25519`) or PEM
    (`retention audit keygen`); anything else is invalid input naming the file."""
    data = read_bytes(
        path,
        InvalidInput,
        f"cannot read the key {path}",
        "pass --key with your private key file, e.g. ~/.ssh/id_ed25519",
    )
    loader = (
        serialization.load_ssh_private_key
        if b"BEGIN OPENSSH PRIVATE KEY" in data
        else serialization.load_pem_private_key
    )
    try:
        key = loader(data, password=None)
    except TypeError:
        raise InvalidInput(
            f"the key {path} is encrypted with a passphrase",
            hint="sign with ssh-keygen instead (it asks for the passphrase): printf %s HASH | "
            f"ssh-keygen -Y sign -n {NAMESPACE} -f KEY > SIG, then `retention approve PLAN "
            "--signature SIG`",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(
            f"{path} is not an Ed25519 private key (OpenSSH or PEM)",
            hint="make one with `ssh-keygen -t ed25519` or `retention audit keygen`",
        )
    return key
