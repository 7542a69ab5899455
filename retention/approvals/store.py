"""A plan's approvals: `PLAN_FILE.approvals`, one JSON line each, and how many of them count.

An approval counts when its signature verifies over this plan's hash in the namespace
`goto-retention-plan`, its key is the one the line names, and the allowed signers let that key
sign as the line's principal. Each principal counts once, however many lines it signed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retention.approvals.signers import AllowedSigners
from retention.approvals.sshsig import SignatureError, verify
from retention.errors import RuntimeFailure
from retention.settings import Settings
from retention.times import parse_stored_time

SUFFIX = ".approvals"


def approvals_needed(settings: Settings) -> int:
    """How many approvals by distinct approvers a plan needs: review mode needs at least one."""
    required = settings.approvals_required
    return max(1, required) if settings.daemon_mode == "review" else required


def approvals_path(plan_file: Path | str) -> Path:
    """Where a plan file's approvals are kept: beside it, `PLAN_FILE.approvals`."""
    return Path(f"{plan_file}{SUFFIX}")


@dataclass(frozen=True)
class Approval:
    """One approval line: who, with which key, when, why, and the armored signature."""

    principal: str
    fingerprint: str
    time: str
    comment: str
    signature: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)

    def recorded(self) -> dict[str, str]:
        """What `plan_approved` records of it (the signature stays in the file)."""
        return {k: v for k, v in self.as_json().items() if k != "signature"}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Approval:
        fields = ("principal", "fingerprint", "time", "signature")
        if not all(isinstance(value.get(name), str) for name in fields):
            raise ValueError("an approval needs principal, fingerprint, time and signature")
        parse_stored_time(str(value["time"]))
        return cls(
            principal=str(value["principal"]),
            fingerprint=str(value["fingerprint"]),
            time=str(value["time"]),
            comment=str(value.get("comment") or ""),
            signature=str(value["signature"]),
        )


def append_approval(plan_file: Path | str, approval: Approval) -> Path:
    """Add one line to the plan's approvals file (created group-writable for an inbox)."""
    path = approvals_path(plan_file)
    line = json.dumps(approval.as_json(), sort_keys=True) + "\n"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o664)
        if os.fstat(descriptor).st_uid == os.geteuid():
            # The next approver (another user of the group) appends to it too; umask aside.
            os.fchmod(descriptor, 0o664)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot write the approval to {path}: {exc.strerror}",
            hint="check that you may write in the plan's folder (the approvers' group)",
        ) from None
    return path


@dataclass
class Tally:
    """The approvals of one plan: those that count (one per principal) and why others do not."""

    valid: list[Approval] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def principals(self) -> list[str]:
        return [approval.principal for approval in self.valid]

    def summary(self, needed: int) -> str:
        """`have/need` and who, for messages and listings."""
        who = f" ({', '.join(self.principals)})" if self.valid else ""
        return f"{len(self.valid)} of {needed} approvals{who}"


def read_approvals(plan_file: Path | str) -> list[tuple[int, Approval | str]]:
    """Each line of the plan's approvals file: an approval, or why it cannot be read."""
    path = approvals_path(plan_file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise RuntimeFailure(
            f"cannot read the approvals {path}: {exc}",
            hint="check the file's rights; it must be readable by the service",
        ) from None
    found: list[tuple[int, Approval | str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((number, Approval.from_json(json.loads(line))))
        except (ValueError, TypeError, AttributeError) as exc:
            found.append((number, f"line {number} is not an approval: {exc}"))
    return found


def count_approvals(plan_file: Path | str, plan_hash: str, signers: AllowedSigners) -> Tally:
    """The approvals that count for this plan hash under these allowed signers.

    Each counts once per person: a principal already counted adds nothing, and a key already
    counted under another principal (an allowed-signers line may give one key several) is
    listed in `rejected`.
    """
    tally = Tally()
    principals: set[str] = set()
    keys: set[str] = set()
    for number, entry in read_approvals(plan_file):
        if isinstance(entry, str):
            tally.rejected.append(entry)
            continue
        why = _why_not(entry, plan_hash, signers)
        if why is None and entry.principal in principals:
            continue  # the same person approving again
        if why is None and entry.fingerprint in keys:
            why = f"the key {entry.fingerprint} already approved this plan as another principal"
        if why is not None:
            tally.rejected.append(f"line {number} ({entry.principal}): {why}")
            continue
        principals.add(entry.principal)
        keys.add(entry.fingerprint)
        tally.valid.append(entry)
    return tally


def _why_not(approval: Approval, plan_hash: str, signers: AllowedSigners) -> str | None:
    try:
        made_by = verify(approval.signature, plan_hash.encode())
    except SignatureError as exc:
        return str(exc)
    if made_by.fingerprint != approval.fingerprint:
        return f"signed by {made_by.fingerprint}, not the key {approval.fingerprint} it names"
    if not signers.allows(approval.principal, made_by.fingerprint):
        return f"the allowed signers do not let {made_by.fingerprint} sign as {approval.principal}"
    return None
