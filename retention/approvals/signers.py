"""The allowed-signers file (`RETENTION_APPROVERS`), in `ssh-keygen -Y` format: who may approve.

Each line: comma-separated principals, optional options, the key type and its base64 key, an
optional comment. The only option accepted is `namespaces="…"`, which must then include
`goto-retention-plan`; any other (`cert-authority`, `valid-after`, …) is refused with its
FILE:LINE, as are principal patterns: an approver is a name, not a pattern.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import Path

from retention.approvals.sshsig import NAMESPACE, SignatureError, fingerprint, key_from_blob
from retention.errors import InvalidInput

_KEY_TYPES = ("ssh-ed25519",)
_OTHER_KEY = re.compile(r"^(ssh-|ecdsa-|sk-)")
_OPTION = re.compile(r'([A-Za-z][A-Za-z0-9-]*)(?:="([^"]*)")?(?:,|$)')


@dataclass(frozen=True)
class Signer:
    """One allowed-signers line: its principals and key (by fingerprint)."""

    principals: tuple[str, ...]
    fingerprint: str
    line: int


@dataclass(frozen=True)
class AllowedSigners:
    """The approvers in force: a principal's keys, and the principals a key may sign as."""

    path: Path
    signers: tuple[Signer, ...]

    def allows(self, principal: str, key_fingerprint: str) -> bool:
        """Whether the key may sign plans as this principal."""
        return any(
            s.fingerprint == key_fingerprint and principal in s.principals for s in self.signers
        )

    def principals_of(self, key_fingerprint: str) -> list[str]:
        """The principals this key may sign as, in file order."""
        found: list[str] = []
        for signer in self.signers:
            if signer.fingerprint == key_fingerprint:
                found.extend(p for p in signer.principals if p not in found)
        return found


def _split_first(text: str) -> tuple[str, str]:
    """The first field (a quoted one may hold spaces) and the rest of the line."""
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            return text, ""
        return text[1:end], text[end + 1 :].lstrip()
    head, _, rest = text.partition(" ")
    return head, rest.lstrip()


def _options(where: str, text: str) -> None:
    """Check a line's options: only `namespaces`, naming this service's namespace."""
    position = 0
    while position < len(text):
        found = _OPTION.match(text, position)
        if found is None:
            raise InvalidInput(
                f"{where}: the options {text!r} cannot be read",
                hint='write options as namespaces="goto-retention-plan", or none',
            )
        name, value = found.group(1), found.group(2)
        if name.lower() != "namespaces":
            raise InvalidInput(
                f"{where}: the option {name!r} is not accepted for approvers",
                hint='remove it: only namespaces="goto-retention-plan" is allowed (no'
                " certificate authorities, no validity windows)",
            )
        if value is None or NAMESPACE not in [v.strip() for v in value.split(",")]:
            raise InvalidInput(
                f"{where}: namespaces={value!r} does not include {NAMESPACE}",
                hint=f'add it (namespaces="{NAMESPACE}") or remove the option',
            )
        position = found.end()


def parse_line(where: str, line: str, number: int) -> Signer | None:
    """One line of the file; None for a blank or comment line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    field, rest = _split_first(text)
    principals = tuple(p.strip() for p in field.split(","))
    if not all(principals):
        raise InvalidInput(
            f"{where}: an empty principal in {field!r}",
            hint="write principals separated by commas, e.g. ana@example.com,ana",
        )
    patterned = [p for p in principals if any(c in p for c in "*?!")]
    if patterned:
        raise InvalidInput(
            f"{where}: the principal {patterned[0]!r} is a pattern",
            hint="name each approver: a pattern would let many people approve as one",
        )
    head, rest = _split_first(rest)
    if head and not head.startswith(_KEY_TYPES) and not _OTHER_KEY.match(head):
        _options(where, head)
        head, rest = _split_first(rest)
    if not head:
        raise InvalidInput(
            f"{where}: no key after the principals",
            hint="write: PRINCIPAL ssh-ed25519 AAAA… (the line of the approver's .pub file)",
        )
    if head not in _KEY_TYPES:
        raise InvalidInput(
            f"{where}: the key type {head!r} is not accepted",
            hint="approvers sign with Ed25519 keys: make one with `ssh-keygen -t ed25519`",
        )
    encoded, _ = _split_first(rest)
    try:
        key = key_from_blob(base64.b64decode(encoded, validate=True))
    except (binascii.Error, SignatureError, ValueError) as exc:
        raise InvalidInput(
            f"{where}: the key is not a valid ssh-ed25519 key ({exc})",
            hint="paste the approver's whole .pub line after the principals",
        ) from None
    return Signer(principals, fingerprint(key), number)


def load_allowed_signers(path: Path) -> AllowedSigners:
    """Read and check the whole file; the first bad line is invalid input with FILE:LINE."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise InvalidInput(
            f"RETENTION_APPROVERS: cannot read {path}: {reason}",
            hint="point RETENTION_APPROVERS at an allowed-signers file (ssh-keygen -Y format)",
        ) from None
    signers = []
    for number, line in enumerate(text.splitlines(), start=1):
        signer = parse_line(f"{path}:{number}", line, number)
        if signer is not None:
            signers.append(signer)
    return AllowedSigners(path, tuple(signers))
