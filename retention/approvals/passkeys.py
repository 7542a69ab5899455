"""Passkey approvals: the operator's list of approvers' keys, challenges and assertion checks.

`RETENTION_APPROVER_PASSKEYS` holds one line per passkey, `PRINCIPAL CREDENTIAL_ID
PUBLIC_KEY_PEM_BASE64 [comment]` (the credential id in base64url, the SubjectPublicKeyInfo PEM
in base64); the operator adds the line the console's registration page shows. The challenge an
approver's authenticator signs is sha256 of the canonical `{decision_hash, principal,
issued_at}`, so an assertion binds one person to one decision document. Assertions are checked
by py_webauthn: user presence and verification, origin, relying party, the signature, ES256 or
EdDSA only. A counter of 0 (synced passkeys) is accepted: replay is stopped by counting one
approval per principal per decision.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from webauthn import verify_authentication_response
from webauthn.helpers import bytes_to_base64url, encode_cbor
from webauthn.helpers.exceptions import WebAuthnException

from retention.canonical import canonical_json
from retention.errors import InvalidInput

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_ES256, _EDDSA = -7, -8


@dataclass(frozen=True)
class Passkey:
    """One listed passkey: whose, its credential id, its public key, the operator's comment."""

    principal: str
    credential_id: str
    public_key: PublicKey
    comment: str = ""

    @property
    def fingerprint(self) -> str:
        """`SHA256:` and the unpadded base64 sha256 of the key's DER SubjectPublicKeyInfo."""
        return fingerprint(self.public_key)


def fingerprint(key: PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


def key_line(principal: str, credential_id: str, key: PublicKey, comment: str = "") -> str:
    """The line the operator adds to RETENTION_APPROVER_PASSKEYS for this key."""
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    line = f"{principal} {credential_id} {base64.b64encode(pem).decode()}"
    return f"{line} {comment}".rstrip()


def load_key(pem: bytes) -> PublicKey:
    """A P-256 or Ed25519 public key from PEM; ValueError for anything else."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError("only P-256 (ES256) and Ed25519 (EdDSA) keys approve")


@dataclass(frozen=True)
class PasskeyList:
    """The operator's list; an empty one when the setting is unset."""

    path: Path | None
    keys: tuple[Passkey, ...] = ()

    def find(self, credential_id: str) -> Passkey | None:
        return next((k for k in self.keys if k.credential_id == credential_id), None)

    def principals(self) -> set[str]:
        return {key.principal for key in self.keys}

    def of(self, principal: str) -> list[Passkey]:
        return [key for key in self.keys if key.principal == principal]


def load_passkeys(path: Path | None) -> PasskeyList:
    """Read the list; a line that is not a passkey stops with FILE:LINE (exit 2)."""
    if path is None:
        return PasskeyList(None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read the approvers' passkeys {path}: {exc}",
            hint="check RETENTION_APPROVER_PASSKEYS and the file's rights",
        ) from None
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(maxsplit=3)
        if not fields or fields[0].startswith("#"):
            continue
        try:
            key = load_key(base64.b64decode(fields[2] if len(fields) > 2 else "", validate=True))
        except (ValueError, binascii.Error) as exc:
            raise InvalidInput(
                f"{path}:{number}: expected PRINCIPAL CREDENTIAL_ID PUBLIC_KEY_PEM_BASE64: {exc}",
                hint="copy the line the console's registration page shows, unchanged",
            ) from None
        comment = fields[3] if len(fields) > 3 else ""
        keys.append(Passkey(fields[0], fields[1], key, comment))
    return PasskeyList(path, tuple(keys))


def challenge(decision_hash: str, principal: str, issued_at: str) -> bytes:
    """What the authenticator signs over: sha256 of the canonical inputs."""
    document = {"decision_hash": decision_hash, "principal": principal, "issued_at": issued_at}
    return hashlib.sha256(canonical_json(document)).digest()


def relying_party(origin: str) -> str:
    """The RP ID: the host of RETENTION_CONSOLE_ORIGIN."""
    host = urlsplit(origin).hostname
    if not host:
        raise InvalidInput(
            f"RETENTION_CONSOLE_ORIGIN {origin!r} names no host",
            hint="set it to the console's address as browsers see it, https://HOST",
        )
    return host


def cose_key(key: PublicKey) -> bytes:
    """The key as COSE (what the WebAuthn library verifies with)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return bytes(encode_cbor({1: 1, 3: _EDDSA, -1: 6, -2: raw}))
    numbers = key.public_numbers()
    x, y = numbers.x.to_bytes(32, "big"), numbers.y.to_bytes(32, "big")
    return bytes(encode_cbor({1: 2, 3: _ES256, -1: 1, -2: x, -3: y}))


@dataclass(frozen=True)
class Assertion:
    """What an approver's authenticator returned, as an approval line stores it (base64)."""

    credential_id: str
    authenticator_data: str
    client_data_json: str
    signature: str

    def as_json(self) -> dict[str, str]:
        return {
            "credential_id": self.credential_id,
            "authenticator_data": self.authenticator_data,
            "client_data_json": self.client_data_json,
            "signature": self.signature,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Assertion:
        fields = ("credential_id", "authenticator_data", "client_data_json", "signature")
        if not all(isinstance(value.get(name), str) for name in fields):
            raise ValueError("a passkey assertion needs " + ", ".join(fields))
        return cls(*(str(value[name]) for name in fields))

    @classmethod
    def from_browser(cls, credential: Mapping[str, Any]) -> Assertion:
        """From the JSON the ceremony posts (base64url fields, as WebAuthn's toJSON)."""
        response = credential.get("response")
        if not isinstance(response, Mapping) or not isinstance(credential.get("id"), str):
            raise TypeError("not a passkey assertion")
        parts = [response.get(n) for n in ("authenticatorData", "clientDataJSON", "signature")]
        if not all(isinstance(part, str) for part in parts):
            raise TypeError("not a passkey assertion")
        standard = [base64.b64encode(_from_base64url(str(part))).decode() for part in parts]
        return cls(str(credential["id"]), *standard)


def _from_base64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_assertion(
    assertion: Assertion, passkey: Passkey, expected_challenge: bytes, origin: str
) -> str | None:
    """Why the assertion does not sign this challenge with this key at this origin (None: it
    does, with the user verified)."""
    if assertion.credential_id != passkey.credential_id:
        return f"the assertion is of {assertion.credential_id}, not {passkey.credential_id}"
    try:
        raw_id = bytes_to_base64url(_from_base64url(assertion.credential_id))
        credential = {
            "id": raw_id,
            "rawId": raw_id,
            "type": "public-key",
            "response": {
                "authenticatorData": _url(assertion.authenticator_data),
                "clientDataJSON": _url(assertion.client_data_json),
                "signature": _url(assertion.signature),
            },
        }
        verify_authentication_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=relying_party(origin),
            expected_origin=origin,
            credential_public_key=cose_key(passkey.public_key),
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, binascii.Error) as exc:
        return f"the passkey assertion does not verify: {exc}"
    return None


def _url(standard: str) -> str:
    return bytes_to_base64url(base64.b64decode(standard, validate=True))
