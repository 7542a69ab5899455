"""An approver's decision on a proposal, signed with a passkey: the challenge, then the approval.

    the form's choice (whole, or items / an organizer's / a meeting's postponed until a date
    with a reason) or a decision another approver signed ► the decision document ► its
    challenge for this principal, now ► the assertion checked ► one approval line, once per
    principal per decision

Nothing is written unless the assertion verifies with a passkey the operator listed for the
signed-in principal, over this decision, at this origin, with the user verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from retention.approvals.decisions import (
    Decision,
    Exclusion,
    check_until,
    decision_of,
    expand,
)
from retention.approvals.passkeys import Assertion, Passkey, challenge, check_assertion
from retention.approvals.proposals import Proposal
from retention.approvals.store import (
    Approval,
    PasskeyCheck,
    Verdict,
    append_approval,
    approval_keys,
    decisions_signed,
    read_approvals,
    signed_hash,
)
from retention.console.ceremony import assertion_options
from retention.errors import InvalidInput, Refused
from retention.settings import Settings

# How long an approver has between asking for the challenge and answering it.
_ANSWER_WITHIN = timedelta(minutes=10)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def chosen_decision(
    proposal: Proposal, choice: Mapping[str, Any], identity: str, now: datetime
) -> Decision:
    """The decision the form asks for: one already signed (by its hash), the plan whole, or
    the plan with the chosen items postponed on this approver's word."""
    plan_hash = proposal.plan.recorded_hash
    wanted = choice.get("decision")
    if isinstance(wanted, str) and wanted:
        for decision, _who in decisions_signed(proposal.path, plan_hash):
            if decision.hash == wanted:
                return decision
        if wanted == plan_hash:
            return Decision(plan_hash)
        raise InvalidInput("no such decision on this proposal", hint="reload the page")
    items = [tuple(entry.split(" ", 1)) for entry in _strings(choice.get("items"))]
    organizers = _strings(choice.get("organizers"))
    meetings = _strings(choice.get("meetings"))
    if not (items or organizers or meetings):
        return Decision(plan_hash)
    until = check_until(str(choice.get("until", "")), now.date())
    found = expand(
        proposal.plan.items,
        chosen=[(pair[0], pair[1]) for pair in items if len(pair) == 2],
        organizers=organizers,
        meetings=meetings,
        until=until,
        reason=str(choice.get("reason", "")),
        by=identity,
    )
    return decision_of(plan_hash, found)


@dataclass(frozen=True)
class Signing:
    """What an approver signs: approve a decision, withdraw their approval of it, or reject
    the plan with a reason."""

    verdict: Verdict
    decision: Decision
    reason: str = ""

    @property
    def hash(self) -> str:
        return signed_hash(self.verdict, self.decision, self.reason)


def chosen(proposal: Proposal, choice: Mapping[str, Any], identity: str, now: datetime) -> Signing:
    """What the page asks to sign: a rejection (`reject`: the reason), the withdrawal of an
    approval (`withdraw`: its decision's hash), or an approval (`chosen_decision`)."""
    plan_hash = proposal.plan.recorded_hash
    if "reject" in choice:
        reason = " ".join(str(choice["reject"]).split())
        if not reason or len(reason) > 500:
            raise InvalidInput("a rejection needs a reason (at most 500 characters)", hint="")
        return Signing("reject", Decision(plan_hash), reason)
    if "withdraw" in choice:
        mine = [
            decision
            for decision, who in decisions_signed(proposal.path, plan_hash)
            if decision.hash == choice["withdraw"] and identity in who
        ]
        if not mine:
            raise InvalidInput("you have no approval of that decision to withdraw", hint="")
        return Signing("withdraw", mine[0])
    return Signing("approve", chosen_decision(proposal, choice, identity, now))


@dataclass(frozen=True)
class Challenge:
    """What the browser signs: the verdict and decision, when the challenge was issued, and
    the assertion's options."""

    signing: Signing
    issued_at: str
    options: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "verdict": self.signing.verdict,
            "reason": self.signing.reason,
            "decision": self.signing.decision.as_json(),
            "issued_at": self.issued_at,
            "options": self.options,
        }


def _passkeys(settings: Settings) -> PasskeyCheck:
    _signers, passkeys = approval_keys(settings)
    if passkeys is None:
        raise Refused(
            "passkey approvals are off: RETENTION_APPROVER_PASSKEYS or RETENTION_CONSOLE_ORIGIN "
            "is not set",
            hint="ask the operator to list your passkey",
            reason="approvals",
        )
    return passkeys


def options_for(
    settings: Settings, signed: str, identity: str, now: datetime
) -> tuple[str, dict[str, Any]]:
    """`issued_at` and the assertion options of a challenge over `signed` for this approver
    (refused without a listed key)."""
    passkeys = _passkeys(settings)
    keys = passkeys.passkeys.of(identity)
    if not keys:
        raise Refused(
            f"no passkey is listed for {identity}",
            hint="register one and hand the line to the operator",
            reason="approvals",
        )
    issued_at = _iso(now)
    made = challenge(signed, identity, issued_at)
    return issued_at, assertion_options(made, passkeys.origin, keys)


def challenge_for(
    settings: Settings, proposal: Proposal, signing: Signing, identity: str, now: datetime
) -> Challenge:
    """The assertion options for this approver and signing (refused without a listed key)."""
    issued_at, options = options_for(settings, signing.hash, identity, now)
    return Challenge(signing, issued_at, options)


def _decision_posted(proposal: Proposal, value: Any, identity: str) -> Decision:
    """The decision document posted back: this plan's, with its items, and new exclusions only
    on this approver's word (others' only as a decision they signed)."""
    if not isinstance(value, Mapping):
        raise InvalidInput("no decision was posted", hint="reload the page")
    try:
        exclusions = [Exclusion.from_json(e) for e in value.get("exclusions") or ()]
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"the decision is malformed: {exc}", hint="reload the page") from None
    plan_hash = proposal.plan.recorded_hash
    if value.get("plan_hash") != plan_hash:
        raise InvalidInput("the decision is about another plan", hint="reload the page")
    decision = decision_of(plan_hash, exclusions)
    listed = {(str(item.session_id), item.action) for item in proposal.plan.items}
    if any((e.session_id, e.action) not in listed for e in decision.exclusions):
        raise InvalidInput("the decision postpones items the plan does not list", hint="reload")
    signed = {d.hash for d, _who in decisions_signed(proposal.path, plan_hash)}
    if decision.hash not in signed and any(e.by != identity for e in decision.exclusions):
        raise InvalidInput(
            "the decision postpones items on another approver's word", hint="reload the page"
        )
    return decision


def verified(
    settings: Settings, posted: Mapping[str, Any], identity: str, signed: str, now: datetime
) -> tuple[Assertion, Passkey, str]:
    """The posted assertion, the listed passkey it verifies with and its `issued_at`, when it
    signs `signed` for this principal at the console's origin, recently; Refused otherwise."""
    passkeys = _passkeys(settings)
    issued_at = str(posted.get("issued_at", ""))
    try:
        issued = datetime.fromisoformat(issued_at.replace("Z", "+00:00"))
        assertion = Assertion.from_browser(posted.get("credential") or {})
    except (ValueError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"no valid assertion was posted: {exc}", hint="sign again") from None
    if issued.tzinfo is None or not now - _ANSWER_WITHIN <= issued <= now:
        raise Refused("the challenge is stale", hint="sign again from the page", reason="approvals")
    listed = passkeys.passkeys.find(assertion.credential_id)
    if listed is None or listed.principal != identity:
        raise Refused(
            f"the passkey {assertion.credential_id} is not listed for {identity}",
            hint="use a passkey the operator listed for you",
            reason="approvals",
        )
    why = check_assertion(
        assertion, listed, challenge(signed, identity, issued_at), passkeys.origin
    )
    if why is not None:
        raise Refused(why, hint="sign again from the page", reason="approvals")
    return assertion, listed, issued_at


def approve(
    settings: Settings,
    proposal: Proposal,
    posted: Mapping[str, Any],
    identity: str,
    now: datetime,
) -> Approval:
    """Check the posted assertion and add the line (an approval, a withdrawal or a rejection);
    Refused or InvalidInput, and nothing written, otherwise."""
    decision = _decision_posted(proposal, posted.get("decision"), identity)
    verdict = posted.get("verdict", "approve")
    if verdict not in ("approve", "withdraw", "reject"):
        raise InvalidInput(f"no such verdict: {verdict!r}", hint="reload the page")
    reason = str(posted.get("reason", "")) if verdict == "reject" else ""
    if verdict == "reject" and not reason.strip():
        raise InvalidInput("a rejection needs a reason", hint="say why the plan is rejected")
    signing = Signing(verdict, decision, reason)
    assertion, listed, issued_at = verified(settings, posted, identity, signing.hash, now)
    if verdict == "approve" and _approved_already(proposal, decision, identity):
        raise Refused(
            f"{identity} has approved this decision already",
            hint="each approver counts once per decision",
            reason="approvals",
        )
    approval = Approval(
        principal=identity,
        fingerprint=listed.fingerprint,
        time=_iso(now),
        comment=" ".join(str(posted.get("comment", "")).split())[:500],
        exclusions=decision.exclusions,
        passkey=assertion,
        issued_at=issued_at,
        verdict=signing.verdict,
        reason=signing.reason,
    )
    append_approval(proposal.path, approval)
    return approval


def _approved_already(proposal: Proposal, decision: Decision, identity: str) -> bool:
    """Whether the principal's last word on this decision is an approval (one a replayed
    assertion would repeat)."""
    plan_hash = proposal.plan.recorded_hash
    last = None
    for _number, entry in read_approvals(proposal.path):
        if (
            isinstance(entry, Approval)
            and entry.principal == identity
            and entry.verdict != "reject"
            and entry.decision(plan_hash).hash == decision.hash
        ):
            last = entry.verdict
    return last == "approve"
