"""Plans: decisions gathered into a reviewable, hashable document bound to its time and account.

Pure: the plan id, creation time, as-of time and the subject's form are arguments. The JSON form
(`goto-retention-plan/1`) is a contract: the compliance officer reviews it, `apply` checks it.
A policy refused on its own (over its cap, or naming what the account does not know) has its
removals moved to `blocked`; a removal another policy also calls for stays, under that policy.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from retention.engine.caps import CapViolation
from retention.engine.decide import ACTION_ORDER, Decision, Kept, Planned, decide, nothing_kept
from retention.engine.planfile import DEFAULT_MAX_CLOCK_SKEW
from retention.engine.planitem import PLAN_FORMAT, PlanItem, iso, plan_hash
from retention.engine.records import SessionRecord
from retention.policy import PolicySet

# How a plan shows a session's subject: the audit record's form of it (RETENTION_AUDIT_SUBJECT).
SubjectForm = Callable[[str | None], str | None]


def no_subject(_subject: str | None) -> str | None:
    """The subject left out (a plan built without the audit record's setting)."""
    return None


@dataclass
class PolicyTotals:
    """What one policy would remove."""

    sessions: int = 0
    recordings: int = 0
    recording_bytes: int = 0
    attendee_lists: int = 0
    attendees: int = 0

    def add(self, item: PlanItem) -> None:
        if item.action == "delete_session":
            self.sessions += 1
        if item.action in ("delete_session", "delete_recordings") and item.recording_id:
            self.recordings += 1
            self.recording_bytes += item.recording_bytes or 0
        if item.action in ("delete_session", "delete_attendees") and item.attendees:
            self.attendee_lists += 1
            self.attendees += item.attendees


@dataclass
class Plan:
    """A plan: the items to execute, what was blocked and what is unknown, with provenance.

    `preview` is true when `as_of` is later than the creation time plus the clock-skew
    tolerance: such a plan shows the future and is never applied. `refused` maps each policy
    refused on its own to its `by` (`cap:NAME`, `unknown:NAME`); `cap_refusals` says why for
    caps. `left_out` counts the items `--limit` dropped. `offline` plans decided on the last
    inventory without calling the API; `inventory_at` is when that inventory's scan finished.
    """

    plan_id: str
    created_at: datetime
    as_of: datetime
    policies_digest: str
    policy_files: list[dict[str, str]]
    policy_hashes: dict[str, str]
    selected: list[str] | None
    items: list[PlanItem] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    scanned: int = 0
    in_scope: dict[str, int] = field(default_factory=dict)
    preview: bool = False
    account_key: str | None = None
    api_base_url: str | None = None
    refused: dict[str, str] = field(default_factory=dict)
    cap_refusals: list[CapViolation] = field(default_factory=list)
    limit: int | None = None
    left_out: int = 0
    offline: bool = False
    inventory_at: datetime | None = None

    @property
    def inventory_age_s(self) -> int | None:
        """How old the inventory was when the plan was made, in whole seconds."""
        if self.inventory_at is None:
            return None
        return max(0, int((self.created_at - self.inventory_at).total_seconds()))

    def summary(self) -> dict[str, Any]:
        """Per policy and in total: sessions, recordings, bytes and attendee lists to remove."""
        per_policy: dict[str, PolicyTotals] = defaultdict(PolicyTotals)
        total = PolicyTotals()
        for item in self.items:
            per_policy[item.policy].add(item)
            total.add(item)
        blocked_by: dict[str, int] = defaultdict(int)
        for entry in self.blocked:
            blocked_by[entry["by"]] += 1
        return {
            "sessions_scanned": self.scanned,
            "items": len(self.items),
            "total": vars(total),
            "per_policy": {
                name: {**vars(totals), "in_scope": self.in_scope.get(name, 0)}
                for name, totals in sorted(per_policy.items())
            },
            "blocked": len(self.blocked),
            "blocked_by": dict(sorted(blocked_by.items())),
            "unknown": len(self.unknown),
            # Per fact that kept sessions unknown: a fail-closed rule silencing an account shows.
            "unknown_by": dict(
                sorted(Counter(name for entry in self.unknown for name in entry["fields"]).items())
            ),
            "left_out": self.left_out,
        }

    def refusals(self) -> list[dict[str, Any]]:
        """Each policy refused on its own: what refused it, how many removals it would have
        made (or has blocked), and the cap (None for a name the account never had)."""
        caps = {str(v.policy): v for v in self.cap_refusals if v.policy is not None}
        blocked: dict[str, int] = defaultdict(int)
        for entry in self.blocked:
            blocked[entry["policy"]] += entry["by"] == self.refused.get(entry["policy"])
        found = []
        for name, by in sorted(self.refused.items()):
            violation = caps.get(name)
            found.append(
                {
                    "policy": name,
                    "by": by,
                    "count": violation.selected if violation else blocked[name],
                    "cap": violation.cap if violation else None,
                    "limit": violation.limit if violation else None,
                    "population": violation.population if violation else None,
                }
            )
        return found

    def document(self) -> dict[str, Any]:
        """The plan file's content, `plan_hash` included."""
        body: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "plan_id": self.plan_id,
            "created_at": iso(self.created_at),
            "as_of": iso(self.as_of),
            "preview": self.preview,
            "offline": self.offline,
            "inventory_at": iso(self.inventory_at),
            "inventory_age_s": self.inventory_age_s,
            "account_key": self.account_key,
            "api_base_url": self.api_base_url,
            "policies_digest": self.policies_digest,
            "policy_files": self.policy_files,
            "policies": self.policy_hashes,
            "selected_policies": self.selected,
            "refused_policies": [
                {"policy": name, "by": by} for name, by in sorted(self.refused.items())
            ],
            "refused": self.refusals(),
            "limit": self.limit,
            "items": [item.to_json() for item in self.items],
            "blocked": self.blocked,
            "unknown": self.unknown,
            "summary": self.summary(),
        }
        body["plan_hash"] = plan_hash(body)
        return body


def without_policies(policy_set: PolicySet, names: Iterable[str]) -> PolicySet:
    """The policy set less the named delete policies; retain rules and holds always stay."""
    dropped = set(names)
    kept = tuple(
        policy
        for policy in policy_set.policies
        if policy.action == "retain" or policy.name not in dropped
    )
    return dataclasses.replace(policy_set, policies=kept)


class SessionDecider:
    """Decides one session at a time under a policy set compiled once for one as-of time.

    `decide` streams over an iterable; this object is that iterable, handing it one session
    each time a decision is asked for.
    """

    def __init__(self, policy_set: PolicySet, as_of: datetime, kept: Kept = nothing_kept) -> None:
        self._session: SessionRecord | None = None
        self._decisions = decide(self._feed(), policy_set, as_of, kept)

    def _feed(self) -> Iterator[SessionRecord]:
        while True:
            assert self._session is not None  # set before every next()
            yield self._session

    def __call__(self, session: SessionRecord) -> Decision:
        self._session = session
        return next(self._decisions)


def build_plan(
    decisions: Iterable[Decision],
    policy_set: PolicySet,
    *,
    plan_id: str,
    created_at: datetime,
    as_of: datetime,
    selected: Sequence[str] | None = None,
    refused: Mapping[str, str] | None = None,
    account_key: str | None = None,
    api_base_url: str | None = None,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    subject: SubjectForm = no_subject,
    offline: bool = False,
    inventory_at: datetime | None = None,
    kept: Kept = nothing_kept,
) -> Plan:
    """Gather decisions into a plan, oldest session first; with `selected`, only those
    policies' actions are items; `refused` ({policy: by}) policies' removals are blocked.
    `subject` gives each entry's subject in the audit record's form."""
    plan = Plan(
        plan_id=plan_id,
        created_at=created_at,
        as_of=as_of,
        policies_digest=policy_set.digest,
        policy_files=[{"file": f.path.name, "sha256": f.sha256} for f in policy_set.files],
        policy_hashes=dict(sorted(policy_set.content_hashes.items())),
        selected=sorted(selected) if selected else None,
        preview=as_of > created_at + max_clock_skew,
        account_key=account_key,
        api_base_url=api_base_url,
        refused=dict(refused or {}),
        offline=offline,
        inventory_at=inventory_at,
    )
    facts = _Facts(subject)
    wanted = set(selected) if selected else None
    refusals = _Refusals(policy_set, plan.refused, as_of, kept) if plan.refused else None
    in_scope: dict[str, int] = defaultdict(int)
    for decision in decisions:
        plan.scanned += 1
        for name in decision.in_scope:
            in_scope[name] += 1
        session = decision.session
        actions = decision.actions
        if refusals is not None and refusals.applies(actions):
            actions = refusals(plan, session, wanted, facts)
        for planned in actions:
            if wanted is None or planned.policy in wanted:
                plan.items.append(_item(session, planned, policy_set, facts))
        for blocked in decision.blocked:
            if wanted is not None and blocked.policy not in wanted:
                continue
            plan.blocked.append(
                _blocked_entry(
                    session, blocked.action, blocked.policy, blocked.by, blocked.until, facts
                )
            )
        if decision.unknown and not decision.actions:
            plan.unknown.append(
                {
                    **facts.of(session),
                    "fields": list(decision.unknown_fields),
                    "reason": decision.reason,
                }
            )
    plan.in_scope = dict(in_scope)
    plan.items.sort(key=_oldest_first)
    return plan


class _Refusals:
    """What a session's plan becomes when some policies are refused on their own.

    Its items come from deciding again without the refused policies; each refused policy's
    removals that no other policy calls for go to `blocked`, found by deciding again with that
    one policy back in (so a refused policy's action that a refused session delete had
    subsumed is shown blocked too).
    """

    def __init__(
        self, policy_set: PolicySet, refused: Mapping[str, str], as_of: datetime, kept: Kept
    ) -> None:
        self.refused = dict(refused)
        self.others = SessionDecider(without_policies(policy_set, self.refused), as_of, kept)
        self.each = {
            name: SessionDecider(
                without_policies(policy_set, set(self.refused) - {name}), as_of, kept
            )
            for name in sorted(self.refused)
        }

    def applies(self, actions: tuple[Planned, ...]) -> bool:
        return any(planned.policy in self.refused for planned in actions)

    def __call__(
        self, plan: Plan, session: SessionRecord, wanted: set[str] | None, facts: _Facts
    ) -> tuple[Planned, ...]:
        """The actions the other policies call for; records the refused ones as blocked."""
        others = self.others(session).actions
        if any(planned.action == "delete_session" for planned in others):
            return others
        still_called = {planned.action for planned in others}
        for name, redecide in self.each.items():
            if wanted is not None and name not in wanted:
                continue
            for planned in redecide(session).actions:
                if planned.policy == name and planned.action not in still_called:
                    by = self.refused[name]
                    entry = _blocked_entry(session, planned.action, name, by, None, facts)
                    plan.blocked.append(entry)
        return others


class _Facts:
    """What a plan shows of a session beside its ids, for the reviewer: who, which group, what,
    when. Informational: covered by the plan hash, never read to decide."""

    def __init__(self, subject: SubjectForm) -> None:
        self.subject = subject

    def of(self, session: SessionRecord) -> dict[str, Any]:
        """The session's keys, people and times, as blocked and unknown entries write them."""
        return {
            "organizerKey": str(session.organizer_key),
            "organizer_email": session.organizer_email,
            "group": session.group_name,
            "subject": self.subject(session.subject),
            "sessionId": str(session.session_id),
            "startTime": iso(session.start_time),
            "endTime": iso(session.end_time),
        }


def _item(
    session: SessionRecord, planned: Planned, policy_set: PolicySet, facts: _Facts
) -> PlanItem:
    return PlanItem(
        organizer_key=session.organizer_key,
        meeting_id=session.meeting_id,
        session_id=session.session_id,
        action=planned.action,
        policy=planned.policy,
        policy_hash=policy_set.content_hash(planned.policy),
        also_matched=planned.also_matched,
        start_time=session.start_time,
        end_time=session.end_time,
        recording_id=session.recording_id,
        recording_bytes=session.recording_bytes,
        attendees=session.attendee_count,
        organizer_email=session.organizer_email,
        group=session.group_name,
        subject=facts.subject(session.subject),
    )


def _blocked_entry(  # noqa: PLR0917
    session: SessionRecord,
    action: str,
    policy: str,
    by: str,
    until: datetime | None,
    facts: _Facts,
) -> dict[str, Any]:
    return {
        **facts.of(session),
        "action": action,
        "policy": policy,
        "by": by,
        "until": iso(until),
    }


def _oldest_first(item: PlanItem) -> tuple[bool, float, int, int]:
    start = item.start_time.timestamp() if item.start_time is not None else 0.0
    return (item.start_time is None, start, item.session_id, ACTION_ORDER.index(item.action))


def limit_plan(plan: Plan, limit: int | None) -> Plan:
    """The plan's first `limit` items (oldest session first); `left_out` counts the rest."""
    if limit is None or limit >= len(plan.items):
        return dataclasses.replace(plan, limit=limit)
    kept = plan.items[:limit]
    return dataclasses.replace(
        plan, items=kept, limit=limit, left_out=plan.left_out + len(plan.items) - limit
    )
