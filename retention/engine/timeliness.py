"""When each removal was due, and what is overdue at a run's end: pure, from the admitted plan.

A removal's `due_at` is the later of its rule's due moment (the session's end plus the rule's
period, after every blocker that had an end: a retain rule's period, a lapsed hold's expiry; a
notice wait counts as if the notice had gone out on time, so it adds nothing) and the first
time that policy's content was loaded (a policy written today makes nothing overdue before it).

A removal is overdue once a run that applied its policy started after its `due_at` and did not
make it; held removals never are (they are kept on purpose). Reasons: `cap`, `approvals`,
`notice`, `unknown_name`, `postponed`, `failed`, `not_run`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retention.engine.decide import Decision
from retention.engine.plan import Plan
from retention.engine.planitem import iso, parse_iso
from retention.policy import Policy, PolicySet
from retention.policy.matching import compile_hold

REASONS = ("cap", "approvals", "notice", "unknown_name", "postponed", "failed", "not_run")
# What a blocked entry's `by` says about why a removal that is due waits (None: not overdue).
_BLOCKED_REASONS = {"cap:": "cap", "unknown:": "unknown_name", "review:": "postponed"}
# Outcomes that made the removal (or found it made): never overdue.
MADE = frozenset({"deleted", "already_absent"})
# Outcomes that say the removal should not be made now: not overdue either.
NOT_DUE_NOW = frozenset({"skipped_hold", "skipped_changed"})


class BlockerEnds:
    """Watches the decisions flowing into a plan and keeps, per session with something due,
    the end of every blocker that has lapsed (retain rules' periods, expired holds)."""

    def __init__(self, policy_set: PolicySet, as_of: datetime) -> None:
        self._retains = {
            policy.name: policy.after for policy in policy_set.policies if policy.action == "retain"
        }
        self._lapsed = [
            (hold.lapses_at, compile_hold(hold))
            for hold in policy_set.holds
            if hold.lapses_at is not None and not hold.active_at(as_of)
        ]
        self.ends: dict[int, datetime] = {}

    def through(self, decisions: Iterable[Decision]) -> Iterator[Decision]:
        """The decisions unchanged, noting the lapsed blockers of those that call for any."""
        for decision in decisions:
            if decision.actions:
                self._note(decision)
            yield decision

    def _note(self, decision: Decision) -> None:
        session = decision.session
        end = session.end_time
        moments = [
            self._retains[name].due_at(end)
            for name in decision.matched
            if name in self._retains and end is not None
        ]
        moments += [lapses for lapses, hold in self._lapsed if lapses and hold.covers(session)]
        if moments:
            self.ends[session.session_id] = max(moments)


def due_moment(
    policy: Policy | None,
    end_time: datetime | None,
    *,
    blockers_end: datetime | None,
    first_loaded: datetime | None,
) -> datetime | None:
    """When a removal under `policy` of a session that ended at `end_time` was due."""
    if policy is None or end_time is None:
        return None
    moments = [policy.after.due_at(end_time)]
    moments += [moment for moment in (blockers_end, first_loaded) if moment is not None]
    return max(moments)


def stamp_due(
    plan: Plan,
    policy_set: PolicySet,
    ends: Mapping[int, datetime],
    first_loaded: Mapping[str, datetime],
) -> Plan:
    """The plan with `due_at` on each item and on each blocked entry that has a rule's due.

    `first_loaded` maps a policy's content hash to its first `policy_loaded`; a content never
    loaded yet counts from the plan's as-of time (the earliest it can be loaded).
    """
    hashes = policy_set.content_hashes
    by_name = {policy.name: policy for policy in policy_set.policies}

    def due(policy: str, session_id: int, end: datetime | None) -> datetime | None:
        loaded = first_loaded.get(hashes.get(policy, ""), plan.as_of)
        return due_moment(
            by_name.get(policy), end, blockers_end=ends.get(session_id), first_loaded=loaded
        )

    items = [
        dataclasses.replace(item, due_at=due(item.policy, item.session_id, item.end_time))
        for item in plan.items
    ]
    blocked = []
    for entry in plan.blocked:
        if overdue_reason(str(entry["by"])) is None or "due_at" in entry:
            blocked.append(entry)
            continue
        session_id = int(entry["sessionId"])
        end = parse_iso(entry.get("endTime"))
        blocked.append({**entry, "due_at": iso(due(str(entry["policy"]), session_id, end))})
    return dataclasses.replace(plan, items=items, blocked=blocked)


def overdue_reason(by: str) -> str | None:
    """Why a blocked removal waits, as an overdue reason; None for holds and retain rules."""
    if by == "notice":
        return "notice"
    return next((why for prefix, why in _BLOCKED_REASONS.items() if by.startswith(prefix)), None)


@dataclass
class PolicyOverdue:
    """One policy's removals due and not made at a run's end."""

    overdue: int = 0
    oldest_due_at: datetime | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, due_at: datetime, reason: str) -> None:
        self.overdue += 1
        self.reasons[reason] = self.reasons.get(reason, 0) + 1
        if self.oldest_due_at is None or due_at < self.oldest_due_at:
            self.oldest_due_at = due_at

    def to_json(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "oldest_due_at": iso(self.oldest_due_at),
            "reasons": dict(sorted(self.reasons.items())),
        }


def overdue_at_end(
    plan: Plan,
    applied: Iterable[str],
    started: datetime,
    outcomes: Mapping[tuple[int, str], str],
    *,
    awaiting_approval: bool = False,
) -> dict[str, PolicyOverdue]:
    """Per policy the run `applied`: its removals due before the run started and not made.

    `outcomes` maps (session id, action) to the outcome this run recorded; an item without
    one was not sent (`not_run`), or awaits approval when the run only proposed the plan.
    """
    found: dict[str, PolicyOverdue] = {name: PolicyOverdue() for name in applied}
    for item in plan.items:
        if item.due_at is None or item.due_at >= started or item.policy not in found:
            continue
        outcome = outcomes.get(item.key)
        if outcome in MADE or outcome in NOT_DUE_NOW:
            continue
        waiting = "approvals" if awaiting_approval else "not_run"
        reason = waiting if outcome is None else "failed"
        found[item.policy].add(item.due_at, reason)
    for entry in plan.blocked:
        why = overdue_reason(str(entry["by"]))
        due_at = parse_iso(entry.get("due_at"))
        policy = str(entry["policy"])
        if why is None or due_at is None or due_at >= started or policy not in found:
            continue
        found[policy].add(due_at, why)
    return found


def summary_json(found: Mapping[str, PolicyOverdue]) -> dict[str, Any]:
    """The per-policy summary as `run_finished` and the state database keep it."""
    return {name: found[name].to_json() for name in sorted(found)}
