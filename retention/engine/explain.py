"""Why a session is kept or removed: a verdict per action, every rule and hold with its reason.

Pure, built on the decision engine (`examiner`) and the one matcher: the verdicts of planned
removals are `due`, those a hold or retain rule blocks `held` or `retained`, whatever the plan
folds into a session delete `subsumed`, and a `due` or `subsumed` removal whose only policies
the admission step refused on their own (a cap, a name the account never had) `refused`. Per
action, the first that applies: unknown, held, no_rule, no_op, retained, not_yet, refused,
subsumed, due. `due` gives the moment for due and subsumed verdicts too (a past one). A due or
subsumed removal approvers postponed is `held` `by: "review:PRINCIPAL"` until its date.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Literal

from retention.engine.decide import Findings, Kept, examiner, nothing_kept
from retention.engine.planitem import iso
from retention.engine.postponements import Postponed
from retention.engine.records import SessionRecord
from retention.policy import Hold, Policy, PolicySet
from retention.policy.matching import CompiledHold, CompiledPolicy, compile_hold, compile_policy
from retention.policy.models import DeleteAction

Verdict = Literal[
    "unknown", "held", "no_rule", "no_op", "retained", "not_yet", "refused", "subsumed", "due"
]
# When a removal (session, action, rule) may go while `notice: required` still keeps it, else
# None: engine/awaiting.py over the notices the state database recorded.
NoticeCheck = Callable[[SessionRecord, str, str], datetime | None]
VERDICTS: tuple[Verdict, ...] = (
    "unknown",
    "held",
    "no_rule",
    "no_op",
    "retained",
    "not_yet",
    "refused",
    "subsumed",
    "due",
)
EXPLAINED_ACTIONS: tuple[DeleteAction, ...] = (
    "delete_recordings",
    "delete_attendees",
    "delete_session",
)
_CHECK_TEXT = {
    "meeting_type": "its meeting type is not among {types}",
    "subject": "its subject does not pass the rule's subject pattern",
    "recording": "it {has} recording",
    "attendee_count": "it had fewer than {least} attendees",
}


@dataclass(frozen=True, slots=True)
class ActionVerdict:
    """One action's verdict: the rule deciding it, what blocks it, when it becomes due."""

    action: DeleteAction
    verdict: Verdict
    policy: str | None
    by: str | None
    due: datetime | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "due": iso(self.due)}


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule (`kind` its action) or a hold (`kind` "hold"), whether it matches, and why."""

    name: str
    kind: str
    matches: bool
    reason: str

    def to_json(self, key: str = "name") -> dict[str, Any]:
        return {key: self.name, "kind": self.kind, "matches": self.matches, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything `retention explain` says about one session at one as-of time."""

    session: SessionRecord
    as_of: datetime
    actions: tuple[ActionVerdict, ...]
    matched: tuple[Finding, ...]
    holds: tuple[Finding, ...]

    def verdict(self, action: str) -> ActionVerdict:
        """The verdict of one action."""
        return next(verdict for verdict in self.actions if verdict.action == action)

    def to_json(self) -> dict[str, Any]:
        return {
            "sessionId": str(self.session.session_id),
            "as_of": iso(self.as_of),
            "actions": [verdict.to_json() for verdict in self.actions],
            "matched": [finding.to_json() for finding in self.matched],
            "holds": [finding.to_json("id") for finding in self.holds],
        }


class Explainer:
    """Explains sessions under one policy set at one as-of time (compiled once)."""

    def __init__(
        self,
        policy_set: PolicySet,
        as_of: datetime,
        notice: NoticeCheck | None = None,
        *,
        refused: Mapping[str, str] | None = None,
        kept: Kept = nothing_kept,
        postponed: Postponed | None = None,
    ) -> None:
        self.as_of = as_of
        self._postponed: Postponed = postponed or {}
        self._notice = notice
        self._refused = dict(refused or {})
        self._examine = examiner(policy_set, as_of, kept)
        self._policies = sorted(policy_set.policies, key=lambda policy: policy.name)
        self._compiled = {policy.name: compile_policy(policy) for policy in self._policies}
        self._holds = [(hold, compile_hold(hold)) for hold in sorted(policy_set.holds, key=_id)]
        self._actions = {policy.name: policy.action for policy in self._policies}
        self._by_name = {policy.name: policy for policy in self._policies}

    def __call__(self, session: SessionRecord) -> Explanation:
        found = self._examine(session)
        return Explanation(
            session=session,
            as_of=self.as_of,
            actions=tuple(
                self._reviewed(self._admitted(self._verdict(action, found), found), session)
                for action in EXPLAINED_ACTIONS
            ),
            matched=tuple(self._rule(policy, session) for policy in self._policies),
            holds=tuple(self._hold(hold, compiled, session) for hold, compiled in self._holds),
        )

    def _verdict(self, action: DeleteAction, found: Findings) -> ActionVerdict:
        decision = found.decision
        session = decision.session
        relevant = {action} if action == "delete_session" else {action, "delete_session"}
        wanted = found.wanted
        covered = "delete_session" in wanted or action in wanted
        nothing = _nothing_to_remove(action, session)
        matching = [name for name in decision.matched if self._actions.get(name) in relevant]
        unknown = self._unknown(action, found, matching, nothing)
        if unknown and not covered:
            return _verdict(
                action,
                "unknown",
                reason=f"unknown {', '.join(unknown)}: a rule may apply, so nothing is removed",
            )
        due_now = [name for kind, name in found.due if kind in relevant]
        waiting = sorted((when, name) for kind, name, when in found.waiting if kind in relevant)
        deciding = wanted.get(action) or wanted.get("delete_session")
        deciding = deciding or (due_now[0] if due_now else None)
        deciding = deciding or (waiting[0][1] if waiting else None)
        earliest = None if due_now or not waiting else waiting[0][0]
        becomes_due = _after_blockers(found, earliest) if matching and nothing is None else None
        if decision.holds:
            held_by = ", ".join(f"hold:{hold_id}" for hold_id in decision.holds)
            return _verdict(
                action,
                "held",
                policy=deciding,
                by=f"hold:{decision.holds[0]}",
                due=becomes_due,
                reason=f"held by {held_by}: nothing it covers is removed",
            )
        if not matching:
            return _verdict(action, "no_rule", reason=f"no delete rule for {_what(action)} matches")
        if nothing is not None:
            return _verdict(
                action, "no_op", policy=matching[0], reason=f"nothing to remove: {nothing}"
            )
        retains = [(by, until) for by, until in found.blockers if by.startswith("retain:")]
        if retains:
            by, until = retains[0]
            kept = f"until {_day(until)}" if until else "while its end time is unknown"
            reason = f"retained by {by.removeprefix('retain:')} {kept}"
            return _verdict(
                action, "retained", policy=deciding, by=by, due=becomes_due, reason=reason
            )
        if earliest is not None:
            reason = f"not yet due: {deciding} applies on {_day(earliest)}"
            return _verdict(action, "not_yet", policy=deciding, due=earliest, reason=reason)
        waits = self._awaiting_notice(action, session, wanted)
        if waits is not None:
            rule, until = waits
            reason = f"awaiting notice: {rule} removes nothing not noticed in time; {_day(until)}"
            return _verdict(action, "not_yet", policy=rule, due=until, reason=reason)
        if action != "delete_session" and "delete_session" in wanted:
            by_rule = wanted["delete_session"]
            reason = f"removed with the session, which {by_rule} deletes"
            return _verdict(action, "subsumed", policy=by_rule, reason=reason)
        if action in wanted:
            rule = wanted[action]
            return _verdict(action, "due", policy=rule, reason=f"due under {rule}")
        return _verdict(action, "unknown", reason="no rule could be shown to apply")

    def _admitted(self, verdict: ActionVerdict, found: Findings) -> ActionVerdict:
        """A due or subsumed verdict as the admission step leaves it: with the first moment a
        policy not refused called for it, else `refused` by what refused its policies."""
        if verdict.verdict not in ("due", "subsumed") or verdict.policy is None:
            return verdict
        action = verdict.action
        session = found.decision.session
        kind = action if verdict.verdict == "due" else "delete_session"
        if verdict.policy not in self._refused:
            return replace(verdict, due=self._first_due(found, kind, session))
        for kind_now, name in sorted(found.due, key=lambda due: (due[0] != action, due[1])):
            if name in self._refused or kind_now not in (action, "delete_session"):
                continue
            if kind_now == action:
                reason, shown = f"due under {name}", "due"
            else:
                reason, shown = f"removed with the session, which {name} deletes", "subsumed"
            return _verdict(
                action,
                shown,  # type: ignore[arg-type]
                policy=name,
                due=self._first_due(found, kind_now, session),
                reason=reason,
            )
        by = self._refused[verdict.policy]
        return _verdict(
            action,
            "refused",
            policy=verdict.policy,
            by=by,
            due=self._first_due(found, kind, session, refused=True),
            reason=f"policy {verdict.policy} is refused on its own ({by}): nothing it alone "
            "calls for is removed",
        )

    def _reviewed(self, verdict: ActionVerdict, session: SessionRecord) -> ActionVerdict:
        """A due or subsumed removal approvers postponed: held by them until its date."""
        if verdict.verdict not in ("due", "subsumed"):
            return verdict
        kind = verdict.action if verdict.verdict == "due" else "delete_session"
        found = self._postponed.get((session.session_id, kind))
        if found is None or self.as_of >= found.until:
            return verdict
        return _verdict(
            verdict.action,
            "held",
            policy=verdict.policy,
            by=found.blocked_by,
            due=found.until,
            reason=found.describe(),
        )

    def _first_due(
        self, found: Findings, kind: str, session: SessionRecord, *, refused: bool = False
    ) -> datetime | None:
        """The first moment a rule (not refused, unless `refused`) called for `kind`."""
        end = session.end_time
        moments = [
            policy.after.due_at(end)
            for action, name in found.due
            if action == kind
            and (policy := self._by_name.get(name)) is not None
            and end is not None
            and (refused or name not in self._refused)
        ]
        return min(moments, default=None)

    def _awaiting_notice(
        self, action: DeleteAction, session: SessionRecord, wanted: Mapping[DeleteAction, str]
    ) -> tuple[str, datetime] | None:
        """The rule that would remove it and when, while `notice: required` still keeps it."""
        sent: DeleteAction = "delete_session" if "delete_session" in wanted else action
        rule = wanted.get(sent)
        if self._notice is None or rule is None:
            return None
        until = self._notice(session, sent, rule)
        return None if until is None else (rule, until)

    def _unknown(
        self, action: DeleteAction, found: Findings, matching: list[str], nothing: str | None
    ) -> list[str]:
        """The missing values that keep a rule from deciding the action (a session delete's
        count only when there is something to remove)."""
        relevant = {action, "delete_session"}
        fields = {
            name
            for kind, names in found.unknown.items()
            if kind == action or (kind in relevant and nothing is None)
            for name in names
        }
        # Whether there is a list to remove is unknown, whatever its rule's age.
        own_rule = any(self._actions[name] == action for name in matching)
        if action == "delete_attendees" and found.decision.session.attendee_count is None:
            fields |= {"attendee_count"} if own_rule else set()
        return sorted(fields)

    def _rule(self, policy: Policy, session: SessionRecord) -> Finding:
        if not policy.enabled:
            return Finding(policy.name, policy.action, False, "disabled: it never applies")
        compiled = self._compiled[policy.name]
        scope, scope_unknown = compiled.scope_truth(session)
        if scope is False:
            return Finding(policy.name, policy.action, False, _outside(policy))
        truth, unknown = compiled.truth(session)
        if truth is False:
            reason = _failed_check(policy, compiled, session)
            return Finding(policy.name, policy.action, False, reason)
        if truth is None and policy.action != "retain":
            fields = ", ".join(unknown or scope_unknown)
            return Finding(policy.name, policy.action, False, f"cannot tell: unknown {fields}")
        return Finding(policy.name, policy.action, True, self._age(policy, session, unknown))

    def _age(self, policy: Policy, session: SessionRecord, unknown: Sequence[str]) -> str:
        """What a matching rule's age says (how it matched, when it is or was due)."""
        end, start = session.end_time, session.start_time
        prefix = f"may match (unknown {', '.join(unknown)})" if unknown else "matches"
        if end is None or start is None or start > end:
            return f"{prefix}; the session's age is unknown"
        when = policy.after.due_at(end)
        ended = end <= policy.after.cutoff(self.as_of)
        if policy.action == "retain":
            said = f"its {policy.after} ended on" if ended else "keeps it until"
            return f"{prefix}; {said} {_day(when)}"
        return f"{prefix}; {'due since' if ended else 'due on'} {_day(when)}"

    def _hold(self, hold: Hold, compiled: CompiledHold, session: SessionRecord) -> Finding:
        if not hold.active_at(self.as_of):
            return Finding(hold.id, "hold", False, f"lapsed at the end of {hold.expires}")
        if compiled.everything:
            return Finding(hold.id, "hold", True, "freezes every session of the account")
        if session.session_id in compiled.sessions:
            return Finding(hold.id, "hold", True, f"lists session {session.session_id}")
        if session.meeting_id in compiled.meetings:
            return Finding(hold.id, "hold", True, f"lists meeting {session.meeting_id}")
        if not compiled.has_filter:
            return Finding(hold.id, "hold", False, "lists neither this session nor its meeting")
        if not compiled.scope_allows(session):
            return Finding(hold.id, "hold", False, "the organizer is outside its scope")
        if not compiled.filter_allows(session):
            return Finding(hold.id, "hold", False, "its subject or start dates do not match")
        return Finding(hold.id, "hold", True, "its filter covers the session")


def explain(session: SessionRecord, policy_set: PolicySet, as_of: datetime) -> Explanation:
    """One session's explanation; `Explainer` compiles the set once for many sessions."""
    return Explainer(policy_set, as_of)(session)


def explainer(policy_set: PolicySet, as_of: datetime) -> Callable[[SessionRecord], Explanation]:
    """A function explaining sessions under `policy_set` at `as_of`."""
    return Explainer(policy_set, as_of)


def _verdict(
    action: DeleteAction,
    verdict: Verdict,
    *,
    policy: str | None = None,
    by: str | None = None,
    due: datetime | None = None,
    reason: str = "",
) -> ActionVerdict:
    return ActionVerdict(action, verdict, policy, by, due, reason)


def _after_blockers(found: Findings, earliest: datetime | None) -> datetime | None:
    """When the action becomes due: after its rule's age and every blocker's end, if known."""
    ends = [until for _, until in found.blockers]
    if any(until is None for until in ends):
        return None
    known = [until for until in ends if until is not None]
    if earliest is not None:
        known.append(earliest)
    return max(known) if known else None


def _nothing_to_remove(action: DeleteAction, session: SessionRecord) -> str | None:
    if action == "delete_recordings" and session.has_recording is False:
        return "no recording"
    if action == "delete_attendees" and session.attendee_count == 0:
        return "no attendees"
    return None


def _what(action: DeleteAction) -> str:
    return {
        "delete_recordings": "its recording",
        "delete_attendees": "its attendee list",
        "delete_session": "the session",
    }[action]


def _outside(policy: Policy) -> str:
    scope = policy.scope
    assert scope is not None  # a rule without a scope covers every organizer
    parts = [
        f"{label} {', '.join(str(entry) for entry in entries)}"
        for label, entries in (
            ("groups", scope.groups),
            ("organizers", scope.organizers),
            ("excluding", scope.exclude_organizers),
            ("excluding groups", scope.exclude_groups),
        )
        if entries
    ]
    return f"the organizer is outside its scope ({'; '.join(parts)})"


def _failed_check(policy: Policy, compiled: CompiledPolicy, session: SessionRecord) -> str:
    """The first condition of the rule the session fails, in words."""
    match = policy.match
    for field_name, check in compiled.checks:
        if check(session) is False:
            text = _CHECK_TEXT[field_name]
            types = ", ".join(match.meeting_types or ()) if match else ""
            least = match.min_attendees if match else None
            has = "has a" if session.has_recording else "has no"
            return text.format(types=types, least=least, has=has)
    return "its conditions do not match"


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _id(hold: Hold) -> str:
    return hold.id
