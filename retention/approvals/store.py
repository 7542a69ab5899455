"""A plan's approvals: `PLAN_FILE.approvals`, one JSON line each, and how many of them count.

Each line approves one decision (approvals/decisions.py): the plan whole, or the plan with
exclusions. An SSH approval counts when its signature verifies over the decision's hash in the
namespace `goto-retention-plan`, its key is the one the line names, and the allowed signers let
that key sign as the line's principal; a passkey approval when its assertion verifies over the
challenge of the decision, its principal and its `issued_at`, with a key the operator listed for
that principal. Each principal counts once per decision, however many lines it signed; the
decision with the most approvals is the one that counts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from retention.approvals.decisions import Decision, Exclusion, decision_of
from retention.approvals.passkeys import (
    Assertion,
    PasskeyList,
    challenge,
    check_assertion,
    load_passkeys,
)
from retention.approvals.signers import AllowedSigners, load_allowed_signers
from retention.approvals.sshsig import SignatureError, verify
from retention.canonical import canonical_hash
from retention.errors import RuntimeFailure
from retention.settings import Settings
from retention.times import parse_stored_time

SUFFIX = ".approvals"
# An approval line approves a decision, withdraws its principal's approval of one, or rejects
# the plan (with a reason): the proposal is then set aside.
Verdict = Literal["approve", "withdraw", "reject"]
VERDICTS: tuple[Verdict, ...] = ("approve", "withdraw", "reject")


def approvals_needed(settings: Settings) -> int:
    """How many approvals by distinct approvers a plan needs: review mode needs at least one."""
    required = settings.approvals_required
    return max(1, required) if settings.daemon_mode == "review" else required


def approvals_path(plan_file: Path | str) -> Path:
    """Where a plan file's approvals are kept: beside it, `PLAN_FILE.approvals`."""
    return Path(f"{plan_file}{SUFFIX}")


@dataclass(frozen=True)
class Approval:
    """One approval line: who, with which key, when, why, the decision's exclusions, and the
    signature (an armored SSH signature, or a passkey assertion with its `issued_at`)."""

    principal: str
    fingerprint: str
    time: str
    comment: str
    signature: str = ""
    exclusions: tuple[Exclusion, ...] = ()
    passkey: Assertion | None = None
    issued_at: str = ""
    verdict: Verdict = "approve"
    reason: str = ""

    def decision(self, plan_hash: str) -> Decision:
        return decision_of(plan_hash, self.exclusions)

    def signed(self, plan_hash: str) -> str:
        """The hash its signature is over (see `signed_hash`)."""
        return signed_hash(self.verdict, self.decision(plan_hash), self.reason)

    def as_json(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "principal": self.principal,
            "fingerprint": self.fingerprint,
            "time": self.time,
            "comment": self.comment,
        }
        if self.passkey is not None:
            value["passkey"] = self.passkey.as_json()
            value["issued_at"] = self.issued_at
        else:
            value["signature"] = self.signature
        if self.exclusions:
            value["exclusions"] = [e.as_json() for e in self.exclusions]
        if self.verdict != "approve":
            value["verdict"] = self.verdict
            value["reason"] = self.reason
        return value

    def recorded(self) -> dict[str, str]:
        """What `plan_approved` records of it (the signature stays in the file)."""
        value = {
            "principal": self.principal,
            "fingerprint": self.fingerprint,
            "time": self.time,
            "comment": self.comment,
        }
        if self.passkey is not None:
            value["credential_id"] = self.passkey.credential_id
        return value

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Approval:
        fields = ("principal", "fingerprint", "time")
        if not all(isinstance(value.get(name), str) for name in fields):
            raise ValueError("an approval needs principal, fingerprint and time")
        parse_stored_time(str(value["time"]))
        passkey = value.get("passkey")
        if passkey is None and not isinstance(value.get("signature"), str):
            raise ValueError("an approval needs a signature or a passkey assertion")
        verdict = value.get("verdict", "approve")
        if verdict not in VERDICTS:
            raise ValueError(f"the verdict {verdict!r} is none of {', '.join(VERDICTS)}")
        return cls(
            principal=str(value["principal"]),
            fingerprint=str(value["fingerprint"]),
            time=str(value["time"]),
            comment=str(value.get("comment") or ""),
            signature=str(value.get("signature") or ""),
            exclusions=tuple(Exclusion.from_json(e) for e in value.get("exclusions") or ()),
            passkey=None if passkey is None else Assertion.from_json(passkey),
            issued_at=str(value.get("issued_at") or ""),
            verdict=verdict,
            reason=str(value.get("reason") or ""),
        )


def signed_hash(verdict: Verdict, decision: Decision, reason: str = "") -> str:
    """What a line signs: the decision's hash to approve it; to withdraw an approval of it,
    sha256 of canonical `{"withdraw": DECISION_HASH}`; to reject the plan, sha256 of canonical
    `{"plan_hash": HASH, "reject": REASON}`."""
    if verdict == "withdraw":
        return canonical_hash({"withdraw": decision.hash})
    if verdict == "reject":
        return canonical_hash({"plan_hash": decision.plan_hash, "reject": reason})
    return decision.hash


@dataclass(frozen=True)
class PasskeyCheck:
    """What passkey approvals are checked against: the operator's list and the console's
    origin (RETENTION_CONSOLE_ORIGIN)."""

    passkeys: PasskeyList
    origin: str


def approval_keys(settings: Settings) -> tuple[AllowedSigners | None, PasskeyCheck | None]:
    """What approvals are checked against: the allowed signers, the listed passkeys."""
    path = settings.approvers_file
    signers = None if path is None else load_allowed_signers(path)
    passkeys = None
    if settings.passkeys_file is not None and settings.console_origin:
        passkeys = PasskeyCheck(load_passkeys(settings.passkeys_file), settings.console_origin)
    return signers, passkeys


def approver_names(settings: Settings) -> set[str]:
    """Every principal the allowed signers or the passkeys file names."""
    signers, passkeys = approval_keys(settings)
    named: set[str] = set()
    if signers is not None:
        named.update(p for signer in signers.signers for p in signer.principals)
    if passkeys is not None:
        named.update(passkeys.passkeys.principals())
    return named


def tally_of(plan_file: Path | str, plan_hash: str, settings: Settings) -> Tally:
    """The plan's approvals that count under the settings' approvers (none without any)."""
    signers, passkeys = approval_keys(settings)
    if signers is None and passkeys is None:
        return Tally()
    return count_approvals(plan_file, plan_hash, signers, passkeys)


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
    decision: Decision | None = None
    # Valid rejections of the plan: it is set aside, never applied.
    rejections: list[Approval] = field(default_factory=list)

    @property
    def exclusions(self) -> tuple[Exclusion, ...]:
        return () if self.decision is None else self.decision.exclusions

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


def count_approvals(
    plan_file: Path | str,
    plan_hash: str,
    signers: AllowedSigners | None,
    passkeys: PasskeyCheck | None = None,
) -> Tally:
    """The approvals that count for this plan: those of the decision most approvers signed.

    Each counts once per person: a principal already counted for a decision adds nothing, and
    a key already counted under another principal (an allowed-signers line may give one key
    several) is listed in `rejected`.
    """
    tallies: dict[str, Tally] = {}
    keys: dict[str, set[str]] = {}
    rejected: list[str] = []
    rejections: list[Approval] = []
    for number, entry in read_approvals(plan_file):
        if isinstance(entry, str):
            rejected.append(entry)
            continue
        decision = entry.decision(plan_hash)
        tally = tallies.setdefault(decision.hash, Tally(decision=decision))
        why = _why_not(entry, entry.signed(plan_hash), signers, passkeys)
        counted = {approval.principal for approval in tally.valid}
        if why is None and entry.verdict == "approve" and entry.principal in counted:
            continue  # the same person approving again
        used = keys.setdefault(decision.hash, set())
        if why is None and entry.verdict == "approve" and entry.fingerprint in used:
            why = f"the key {entry.fingerprint} already approved this plan as another principal"
        if why is not None:
            rejected.append(f"line {number} ({entry.principal}): {why}")
        elif entry.verdict == "reject":
            rejections.append(entry)
        elif entry.verdict == "withdraw":
            withdrawn = [a for a in tally.valid if a.principal == entry.principal]
            tally.valid = [a for a in tally.valid if a.principal != entry.principal]
            used.difference_update(a.fingerprint for a in withdrawn)
        else:
            used.add(entry.fingerprint)
            tally.valid.append(entry)
    best = max(tallies.values(), key=lambda t: len(t.valid), default=Tally())
    if not best.valid:
        best = Tally()
    best.rejected = rejected
    best.rejections = rejections
    return best


def decisions_signed(plan_file: Path | str, plan_hash: str) -> list[tuple[Decision, list[str]]]:
    """Each decision some line approves, with who signed it and has not withdrawn (signatures
    not checked: for display and for choosing the decision to sign)."""
    found: dict[str, tuple[Decision, list[str]]] = {}
    for _number, entry in read_approvals(plan_file):
        if isinstance(entry, str) or entry.verdict == "reject":
            continue
        decision = entry.decision(plan_hash)
        who = found.setdefault(decision.hash, (decision, []))[1]
        if entry.verdict == "withdraw":
            who[:] = [name for name in who if name != entry.principal]
        elif entry.principal not in who:
            who.append(entry.principal)
    return list(found.values())


def _why_not(
    approval: Approval,
    decision_hash: str,
    signers: AllowedSigners | None,
    passkeys: PasskeyCheck | None,
) -> str | None:
    if approval.passkey is not None:
        return _passkey_why_not(approval, approval.passkey, decision_hash, passkeys)
    if signers is None:
        return "no allowed-signers file (RETENTION_APPROVERS) to check an SSH approval"
    try:
        made_by = verify(approval.signature, decision_hash.encode())
    except SignatureError as exc:
        return str(exc)
    if made_by.fingerprint != approval.fingerprint:
        return f"signed by {made_by.fingerprint}, not the key {approval.fingerprint} it names"
    if not signers.allows(approval.principal, made_by.fingerprint):
        return f"the allowed signers do not let {made_by.fingerprint} sign as {approval.principal}"
    return None


def _passkey_why_not(
    approval: Approval, assertion: Assertion, decision_hash: str, passkeys: PasskeyCheck | None
) -> str | None:
    if passkeys is None:
        return "no passkeys file (RETENTION_APPROVER_PASSKEYS) to check a passkey approval"
    listed = passkeys.passkeys.find(assertion.credential_id)
    if listed is None or listed.principal != approval.principal:
        return f"the passkey {assertion.credential_id} is not listed for {approval.principal}"
    if listed.fingerprint != approval.fingerprint:
        return f"the passkey listed is {listed.fingerprint}, not the key {approval.fingerprint}"
    expected = challenge(decision_hash, approval.principal, approval.issued_at)
    return check_assertion(assertion, listed, expected, passkeys.origin)
