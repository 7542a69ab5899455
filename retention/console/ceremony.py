"""The WebAuthn ceremonies: registering a passkey (the line to hand the operator) and the options
of an approval's assertion.

Registration proves nothing to the service: it only turns the browser's new credential into the
line `PRINCIPAL CREDENTIAL_ID PUBLIC_KEY_PEM_BASE64 comment` that the operator adds to
RETENTION_APPROVER_PASSKEYS. The challenge of a registration is random and kept here a few
minutes; an approval's is derived from the decision (approvals/passkeys.py) and kept nowhere.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import serialization
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_registration_response,
)
from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from retention.approvals.passkeys import Passkey, key_line, load_key, relying_party
from retention.errors import InvalidInput

ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA]
_REGISTRATION_MINUTES = 5
RP_NAME = "goto-retention"


@dataclass
class Registrations:
    """Registration challenges handed out, per identity, until they are used or go stale."""

    issued: dict[str, tuple[bytes, datetime]] = field(default_factory=dict)

    def options(self, identity: str, origin: str, now: datetime) -> dict[str, Any]:
        challenge = secrets.token_bytes(32)
        self.issued[identity] = (challenge, now)
        options = generate_registration_options(
            rp_id=relying_party(origin),
            rp_name=RP_NAME,
            user_name=identity,
            user_id=hashlib.sha256(identity.encode()).digest()[:16],
            challenge=challenge,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            supported_pub_key_algs=ALGORITHMS,
        )
        return dict(json.loads(options_to_json(options)))

    def line(self, identity: str, credential: dict[str, Any], origin: str, now: datetime) -> str:
        """The passkeys-file line for the credential the browser made (InvalidInput if it is
        not the one asked for, or its key is not ES256 or EdDSA)."""
        challenge, at = self.issued.pop(identity, (b"", now))
        if not challenge or now - at > timedelta(minutes=_REGISTRATION_MINUTES):
            raise InvalidInput("no registration was started here", hint="start it again")
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=relying_party(origin),
                expected_origin=origin,
                require_user_verification=True,
                supported_pub_key_algs=ALGORITHMS,
            )
            decoded = decode_credential_public_key(verified.credential_public_key)
            public = decoded_public_key_to_cryptography(decoded)
            key = load_key(
                public.public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        except (WebAuthnException, ValueError) as exc:
            raise InvalidInput(f"the passkey was not registered: {exc}", hint="try again") from None
        credential_id = _base64url(verified.credential_id)
        return key_line(identity, credential_id, key, f"registered-{now:%Y-%m-%d}")


def assertion_options(challenge: bytes, origin: str, keys: list[Passkey]) -> dict[str, Any]:
    """What `navigator.credentials.get` is asked: this challenge, the approver's listed keys,
    user verification required."""
    options = generate_authentication_options(
        rp_id=relying_party(origin),
        challenge=challenge,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=_from_base64url(key.credential_id)) for key in keys
        ],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return dict(json.loads(options_to_json(options)))


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _from_base64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
