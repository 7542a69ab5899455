"""A software WebAuthn authenticator for the in-process console tests: it makes credentials
(attestation `none`) and assertions as a browser's authenticator would, P-256 or Ed25519."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from retention.approvals.passkeys import cose_key, key_line

UP_UV = 0x05
ATTESTED = 0x45  # user present, verified, attested credential data


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class SoftKey:
    """One credential: its id and private key; `sign_count` stays 0 like a synced passkey."""

    principal: str
    kind: str = "es256"
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    private: Any = None

    def __post_init__(self) -> None:
        if self.private is None:
            self.private = (
                ec.generate_private_key(ec.SECP256R1())
                if self.kind == "es256"
                else ed25519.Ed25519PrivateKey.generate()
            )

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def line(self) -> str:
        """The passkeys-file line the operator adds for it."""
        return key_line(self.principal, self.id, self.private.public_key(), "test")

    def _sign(self, data: bytes) -> bytes:
        if self.kind == "es256":
            return bytes(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return bytes(self.private.sign(data))

    def assertion(
        self,
        challenge: str,
        origin: str,
        rp_id: str,
        *,
        flags: int = UP_UV,
    ) -> dict[str, Any]:
        """What `navigator.credentials.get` returns, as the ceremony posts it."""
        client_data = json.dumps(
            {"type": "webauthn.get", "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()
        auth_data = hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + b"\0\0\0\0"
        signature = self._sign(auth_data + hashlib.sha256(client_data).digest())
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
            },
        }

    def attestation(self, challenge: str, origin: str, rp_id: str) -> dict[str, Any]:
        """What `navigator.credentials.create` returns (attestation `none`)."""
        client_data = json.dumps(
            {"type": "webauthn.create", "challenge": challenge, "origin": origin}
        ).encode()
        auth_data = (
            hashlib.sha256(rp_id.encode()).digest()
            + bytes([ATTESTED])
            + b"\0\0\0\0"
            + bytes(16)
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + cose_key(self.private.public_key())
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
            },
        }
