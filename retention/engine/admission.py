"""The one admission step: what the policies call for, admitted or blocked on current facts.

Every route to a removal (plan, run, apply, the daemon in both modes, reconciliation, explain and
policy tests) comes through here, at the same point:

    decisions (decide, on facts read now, holds with their kept coverage) ►
    policies refused on their own (a name the account never had, then caps) ►
    removals awaiting owner notice ► removals approvers postponed ► what may be removed now,
    what is blocked by what, and the refusals to record

`admit` is once per run, over the whole inventory; `admit_item` is for the moment a request
leaves (holds and their coverage, the policy set in force, notices, the item's own policy on
the session as re-read). Pure: facts, noticed times and names are inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retention.engine.awaiting import Noticed, hold_for_notice, notice_gate
from retention.engine.caps import CapViolation, policy_cap_violations
from retention.engine.decide import Decision, Kept, decide, nothing_kept
from retention.engine.plan import Plan, build_plan
from retention.engine.postponements import Postponed, hold_for_review
from retention.engine.recheck import Rechecker
from retention.engine.records import SessionRecord
from retention.engine.timeliness import BlockerEnds, stamp_due
from retention.policy import PolicySet


@dataclass(frozen=True)
class Admission:
    """What admission needs beside the decisions: the policy set and as-of time they were made
    under, the policies refused for naming what the account never had (`{policy: by}`), when
    each removal was noticed and how long a notice must precede it, the holds' kept coverage,
    the removals approvers postponed (blocked `by: "review:PRINCIPAL"` until their date).

    `caps`: whether per-policy caps are counted (a plan of what the policies alone call for,
    as owner notices announce it, counts none and holds nothing for notice). `first_loaded`:
    when each policy content (by hash) was first loaded, for each removal's `due_at`.
    """

    policy_set: PolicySet
    as_of: datetime
    unknown: Mapping[str, str] = field(default_factory=dict)
    noticed: Noticed = field(default_factory=dict)
    notice_days: int = 0
    kept: Kept = nothing_kept
    caps: bool = True
    first_loaded: Mapping[str, datetime] = field(default_factory=dict)
    postponed: Postponed = field(default_factory=dict)

    def decisions(self, sessions: Iterable[SessionRecord]) -> Iterable[Decision]:
        """The decisions on these sessions (facts as read now), holds' coverage kept."""
        return decide(sessions, self.policy_set, self.as_of, self.kept)


def admit(
    sessions: Callable[[], Iterable[SessionRecord]],
    admission: Admission,
    **plan_args: Any,
) -> Plan:
    """Plan the sessions' decisions, refusing on its own each policy that names what the
    account never had, or goes over its `max_deletions` or `max_percent`.

    A refused policy's removals that another policy calls for fall to that policy, which may
    then go over its own cap in turn: planning repeats (one pass of `sessions()` each) until no
    policy is over. `plan.cap_refusals` lists each cap refusal once, for its `refused` event.
    Removals awaiting notice move to `blocked` before caps are counted (a cap counts what the
    run would remove). The run cap is not checked here: over it, the caller refuses the run.
    """
    policy_set = admission.policy_set
    refused_now = {
        name: by
        for name, by in admission.unknown.items()
        if any(policy.name == name for policy in policy_set.policies)
    }
    refusals: list[CapViolation] = []
    ends = BlockerEnds(policy_set, admission.as_of)
    while True:
        plan = build_plan(
            ends.through(admission.decisions(sessions())),
            policy_set,
            refused=refused_now,
            as_of=admission.as_of,
            kept=admission.kept,
            **plan_args,
        )
        plan = stamp_due(plan, policy_set, ends.ends, admission.first_loaded)
        plan = hold_for_review(plan, admission.postponed)
        if not admission.caps:
            return plan
        plan = hold_for_notice(plan, policy_set, admission.noticed, admission.notice_days)
        over = [
            violation
            for violation in policy_cap_violations(plan.items, policy_set, plan.in_scope)
            if violation.policy is not None and violation.policy not in refused_now
        ]
        if not over:
            plan.cap_refusals = refusals
            return plan
        for violation in over:
            refused_now[str(violation.policy)] = violation.by
            refusals.append(violation)


def admit_item(admission: Admission) -> Rechecker:
    """The check of one item when its request leaves: the item decided again on the session
    as re-read, with the holds in force and their coverage, postponements, its own policy, and
    notices."""
    notice = notice_gate(admission.policy_set, admission.noticed, admission.notice_days)
    return Rechecker(admission.policy_set, notice, admission.kept, admission.postponed)
