"""A run's timeliness steps: first loads before deciding; what is overdue at the end.

policy_loaded ► remember each policy content's first load (from the record) ► admit
(each removal stamped with its due_at) ► execute ► overdue per policy: into run_finished,
the state database's series, and the overdue alert (RETENTION_MAX_OVERDUE)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from retention.alerts.conditions import Alert, settle
from retention.audit import timeliness as recorded
from retention.audit.store import connect_reader
from retention.audit.timelyreport import MIN_GAP_SECONDS
from retention.engine.overdue import (
    Overdue,
    first_loads,
    forget_other_policies,
    latest_overdue,
    record_overdue,
    remember_first_loads,
)
from retention.engine.plan import Plan
from retention.engine.planitem import iso
from retention.engine.timeliness import overdue_at_end, summary_json
from retention.errors import RetentionError
from retention.policy import load_policy_set
from retention.service.schedule import schedules_for
from retention.service.session import Session
from retention.settings import Settings

CONDITION = "overdue:"


def remember_loads(session: Session) -> None:
    """Keep the first load of each policy content in force that the state does not know yet
    (the run's own `policy_loaded` is in the record already: a new content counts from it)."""
    known = first_loads(session.db)
    missing = {h for h in session.policy_set.content_hashes.values() if h not in known}
    if not missing:
        return
    conn = connect_reader(session.settings.audit_db)
    try:
        found = recorded.first_loads(conn, missing)
    finally:
        conn.close()
    remember_first_loads(session.db, ((h, name, at) for h, (name, at) in found.items()))


async def conclude(
    session: Session, plan: Plan, *, selected: Sequence[str] | None, proposed: bool = False
) -> None:
    """At the end of a run that decided the whole inventory: what is overdue per policy it
    applied, carried in `run_finished`, kept in the state database, alerted past the limit."""
    applied = selected or sorted(
        policy.name for policy in session.policy_set.enabled_policies if policy.action != "retain"
    )
    conn = connect_reader(session.settings.audit_db)
    try:
        outcomes = recorded.run_outcomes(conn, session.run_id)
    finally:
        conn.close()
    found = overdue_at_end(plan, applied, session.started_at, outcomes, awaiting_approval=proposed)
    summary = summary_json(found)
    session.overdue = summary
    now = session.clock()
    record_overdue(session.db, session.run_id, now, summary)
    if not selected:
        forget_other_policies(session.db, applied)
    await settle_overdue(session.settings, session.db, now)


def expect_decision(session: Session, selected: Sequence[str] | None) -> None:
    """Mark a run that is to decide the whole inventory: if it ends before deciding, what was
    overdue stays overdue, each for `not_run`, in its `run_finished` and the series."""

    def undecided() -> dict[str, Any] | None:
        latest = [p for p in latest_overdue(session.db) if not selected or p.policy in selected]
        summary = {
            point.policy: {
                "overdue": point.overdue,
                "oldest_due_at": iso(point.oldest_due_at) if point.overdue else None,
                "reasons": {"not_run": point.overdue} if point.overdue else {},
            }
            for point in latest
        }
        record_overdue(session.db, session.run_id, session.clock(), summary)
        return summary

    session.undecided = undecided


def past_limit(settings: Settings, latest: Sequence[Overdue], now: datetime) -> list[Overdue]:
    """The policies whose oldest overdue removal has waited longer than RETENTION_MAX_OVERDUE."""
    limit = settings.max_overdue_seconds
    return [point for point in latest if point.overdue and point.age_seconds(now) > limit]


async def settle_overdue(settings: Settings, db: Database, now: datetime) -> None:
    """One alert per policy past the limit (again once per repeat); resolved when it clears."""
    found = [
        Alert(
            f"{CONDITION}{point.policy}",
            f"policy {point.policy}: removals overdue for {_span(point.age_seconds(now))}",
            f"{point.overdue} removal(s) of policy {point.policy} are due and not made, the "
            f"oldest since {point.oldest_due_at:%Y-%m-%d %H:%M} UTC (over RETENTION_MAX_OVERDUE"
            f" {settings.max_overdue}); why: "
            + ", ".join(f"{reason} {count}" for reason, count in sorted(point.reasons.items()))
            + "\nhint: `retention status` shows each policy; `retention plan` why they wait",
        )
        for point in past_limit(settings, latest_overdue(db), now)
    ]
    await settle(
        settings,
        db,
        now,
        found=found,
        gone=[CONDITION],
        note="the policy's overdue removals are made, or within RETENTION_MAX_OVERDUE again",
    )


def _span(seconds: float) -> str:
    """A wait in days and hours (`8d 2h`)."""
    whole = timedelta(seconds=int(seconds))
    hours = whole.seconds // 3600
    return f"{whole.days}d {hours}h" if whole.days else f"{hours}h {whole.seconds % 3600 // 60}m"


# Fire times sampled from this moment to find a schedule's longest interval (a fixed start,
# so the same folder always gives the same gap).
_SAMPLE_FROM = datetime(2026, 1, 5, tzinfo=UTC)
_SAMPLE_FIRES = 400


def schedule_gap_seconds(settings: Settings) -> float | None:
    """Twice the longest interval of the schedules in force (at least 2 h): longer without a
    run is a gap in the overdue series. None when the folder cannot be read here."""
    try:
        policy_set = load_policy_set([settings.policy_dir])
        schedules = schedules_for(policy_set, settings.default_schedule)
    except RetentionError:
        return None
    longest = 0.0
    for schedule in schedules:
        trigger = schedule.trigger()
        previous: datetime | None = None
        moment = _SAMPLE_FROM
        for _ in range(_SAMPLE_FIRES):
            fire = trigger.get_next_fire_time(previous, moment)
            if fire is None:
                break
            if previous is not None:
                longest = max(longest, (fire - previous).total_seconds())
            previous, moment = fire, fire + timedelta(microseconds=1)
    return max(2 * longest, MIN_GAP_SECONDS) if longest else None
