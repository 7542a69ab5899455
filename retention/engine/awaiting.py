"""`notice: required`: such a policy removes nothing its organizer was not told of in time.

Pure: when each removal was noticed is an argument (the state database keeps it). An item is
awaiting notice until `RETENTION_OWNER_NOTICE_DAYS` have passed since its organizer was told;
the plan lists it in `blocked` with `by: "notice"` and `until`, the earliest it may go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from retention.engine.plan import Plan
from retention.engine.planitem import PlanItem
from retention.policy import Policy, PolicySet

NOTICE = "notice"
Noticed = Mapping[tuple[int, str], datetime]


def awaiting_notice(
    policy: Policy, noticed_at: datetime | None, notice_days: int, as_of: datetime
) -> datetime | None:
    """When a removal under `policy` may go, if notice still keeps it at `as_of`; else None.

    None: the policy asks for no notice, or the organizer was told at least `notice_days`
    before `as_of`. Otherwise the date it may go: `notice_days` after the notice, or after
    `as_of` when none was sent yet (the next notice goes out no earlier than that).
    """
    if policy.notice != "required":
        return None
    wait = timedelta(days=notice_days)
    if noticed_at is not None and noticed_at + wait <= as_of:
        return None
    return (noticed_at if noticed_at is not None else as_of) + wait


def hold_for_notice(plan: Plan, policy_set: PolicySet, noticed: Noticed, notice_days: int) -> Plan:
    """The plan with each item still awaiting notice moved to `blocked` (`by: "notice"`)."""
    policies = {policy.name: policy for policy in policy_set.policies}
    if not any(policy.notice == "required" for policy in policies.values()):
        return plan
    kept: list[PlanItem] = []
    blocked = list(plan.blocked)
    for item in plan.items:
        until = awaiting_notice(
            policies[item.policy], noticed.get(item.key), notice_days, plan.as_of
        )
        if until is None:
            kept.append(item)
            continue
        blocked.append(item.blocked_entry(NOTICE, until))
    return dataclasses.replace(plan, items=kept, blocked=blocked)


NoticeGate = Callable[[PlanItem, datetime], str | None]


def notice_gate(policy_set: PolicySet, noticed: Noticed, notice_days: int) -> NoticeGate:
    """At send time: why an item may not go yet for want of notice (None: it may)."""
    policies = {policy.name: policy for policy in policy_set.policies}

    def check(item: PlanItem, now: datetime) -> str | None:
        policy = policies.get(item.policy)
        if policy is None:
            return None
        until = awaiting_notice(policy, noticed.get(item.key), notice_days, now)
        if until is None:
            return None
        return (
            f"not noticed: its organizer must be told {notice_days} day(s) before"
            f" (first {until:%Y-%m-%d %H:%M} UTC)"
        )

    return check
