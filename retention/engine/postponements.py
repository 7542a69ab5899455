"""Removals approvers postponed: kept in the state database, blocked `by: review:PRINCIPAL`.

An approved decision may postpone some of a plan's removals until a date, with a reason. Once
applied they are rows of `postponements`; the admission step reads them on every route, so a
postponed removal is blocked until its date whichever route comes to it (`admit` moves it to
the plan's `blocked`, `admit_item` stops it when its request would leave). An approver may lift
a postponement; the removal is then decided as any other at the next run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlite_utils import Database

from retention.engine.plan import Plan
from retention.engine.planitem import PlanItem, iso

REVIEW = "review:"


@dataclass(frozen=True)
class Postponement:
    """Until when (the start of that day, UTC) a removal waits, on whose word and why."""

    until: datetime
    by: str
    reason: str

    @property
    def blocked_by(self) -> str:
        return f"{REVIEW}{self.by}"

    def describe(self) -> str:
        return f"postponed by {self.blocked_by} until {self.until:%Y-%m-%d}: {self.reason}"


Postponed = Mapping[tuple[int, str], Postponement]


def until_moment(day: str) -> datetime:
    """A postponement's date as the moment it ends: that day's start, UTC."""
    return datetime.combine(date.fromisoformat(day[:10]), time(), tzinfo=UTC)


def postponed_now(db: Database) -> dict[tuple[int, str], Postponement]:
    """Every postponement not lifted (a past one included: the admission step compares)."""
    if "postponements" not in db.table_names():
        return {}
    return {
        (int(row["session_id"]), str(row["action"])): Postponement(
            until_moment(str(row["until"])), str(row["by"]), str(row["reason"])
        )
        for row in db.query(
            "SELECT session_id, action, until, by, reason FROM postponements "
            "WHERE lifted_at IS NULL"
        )
    }


def postpone(
    db: Database, exclusions: Iterable[Mapping[str, str]], plan_id: str, at: datetime
) -> None:
    """Keep a decision's exclusions (`sessionId`, `action`, `until`, `reason`, `by`); a removal
    postponed again takes the latest decision."""
    rows: list[dict[str, Any]] = [
        {
            "session_id": str(entry["sessionId"]),
            "action": str(entry["action"]),
            "until": str(entry["until"]),
            "reason": str(entry["reason"]),
            "by": str(entry["by"]),
            "plan_id": plan_id,
            "decided_at": iso(at),
            "lifted_at": None,
            "lifted_by": None,
        }
        for entry in exclusions
    ]
    if rows:
        with db.conn:
            db.table("postponements").upsert_all(rows, pk=("session_id", "action"))


def lift(db: Database, session_id: str, action: str, by: str, at: datetime) -> bool:
    """Lift a postponement not lifted yet; whether there was one."""
    with db.conn:
        done = db.execute(
            "UPDATE postponements SET lifted_at = ?, lifted_by = ? "
            "WHERE session_id = ? AND action = ? AND lifted_at IS NULL",
            [iso(at), by, session_id, action],
        )
    return bool(done.rowcount)


def active(postponed: Postponed, item: PlanItem, now: datetime) -> Postponement | None:
    """The postponement that keeps this item at `now`, if any."""
    found = postponed.get(item.key)
    return found if found is not None and now < found.until else None


def hold_for_review(plan: Plan, postponed: Postponed) -> Plan:
    """The plan with each postponed item moved to `blocked` (`by: "review:PRINCIPAL"`)."""
    if not postponed:
        return plan
    kept: list[PlanItem] = []
    blocked = list(plan.blocked)
    for item in plan.items:
        found = active(postponed, item, plan.as_of)
        if found is None:
            kept.append(item)
            continue
        blocked.append(item.blocked_entry(found.blocked_by, found.until, reason=found.reason))
    return dataclasses.replace(plan, items=kept, blocked=blocked)
