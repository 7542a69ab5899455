"""The daemon's schedules: which crontabs the policies name, and the trigger of each.

A policy's `schedule` and RETENTION_DEFAULT_SCHEDULE (for policies without one) share one grammar
(`policy/schedules.py`): a 5-field crontab in UTC or `@every N[s|m|h]`. A schedule runs the
policies that name it (or fall back to it); holds and retain rules apply in every run (see
docs/policies.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.triggers.base import BaseTrigger

from retention.errors import SettingsError
from retention.policy import PolicySet
from retention.policy.schedules import ScheduleError, schedule_trigger

# The daemon's logger: these lines are the daemon's own.
log = structlog.get_logger("retention.daemon")


@dataclass(frozen=True)
class Schedule:
    """One distinct schedule and the enabled policies that named it (or fell back to it)."""

    spec: str
    policies: tuple[str, ...]

    @property
    def job_id(self) -> str:
        """The scheduler's id for this schedule's job."""
        return f"schedule:{self.spec}"

    def trigger(self, *, start: datetime | None = None) -> BaseTrigger:
        """The APScheduler trigger (the spec was checked by parse_schedule already); `start`
        as `schedule_trigger` takes it (a test's clock)."""
        return parse_schedule(self.spec, start=start)


def parse_schedule(
    spec: str, *, setting: str = "RETENTION_DEFAULT_SCHEDULE", start: datetime | None = None
) -> BaseTrigger:
    """The trigger of a schedule; SettingsError naming `setting` when it is neither form."""
    try:
        return schedule_trigger(spec, start=start)
    except ScheduleError as exc:
        raise SettingsError(f"{setting}: {exc}", hint=exc.hint) from None


def schedules_for(policy_set: PolicySet, default: str) -> list[Schedule]:
    """The distinct schedules of the enabled delete policies, each with its policies' names.

    Retain policies only block removals: they never need a run of their own.
    """
    by_spec: dict[str, list[str]] = {}
    for policy in policy_set.enabled_policies:
        if policy.action == "retain":
            continue
        spec = policy.schedule or default
        by_spec.setdefault(spec, []).append(policy.name)
    return [Schedule(spec, tuple(sorted(names))) for spec, names in sorted(by_spec.items())]


def policies_of(schedules: Sequence[Schedule], spec: str) -> frozenset[str]:
    """The policies the schedule `spec` runs now (after a reload, the new set's)."""
    for schedule in schedules:
        if schedule.spec == spec:
            return frozenset(schedule.policies)
    return frozenset()


@dataclass
class RunQueue:
    """Runs never overlap: the policies the run in flight applies, and those queued behind it."""

    applying: frozenset[str] | None = None
    queued: set[str] = field(default_factory=set)

    def offer(self, policies: frozenset[str]) -> Literal["start", "queued", "covered"]:
        """A schedule fired for `policies`: start a run, queue them, or they are covered."""
        if self.applying is None:
            return "start" if policies else "covered"
        waiting = policies - self.applying
        self.queued |= waiting
        return "queued" if waiting else "covered"

    def started(self, policies: frozenset[str]) -> None:
        self.applying = policies

    def finished(self, schedules: Sequence[Schedule]) -> frozenset[str]:
        """The run ended: the queued policies still scheduled, to run next (the queue empties)."""
        scheduled = {name for schedule in schedules for name in schedule.policies}
        queued = frozenset(self.queued & scheduled)
        self.applying = None
        self.queued.clear()
        return queued


# The scheduler's events the daemon logs: a missed run, one skipped while running, a failure.
JOB_EVENTS = EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES


def when(at: datetime | None) -> str:
    """A time as the daemon's status and log lines show it, or "none"."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else "none"


def log_job_event(event: JobExecutionEvent) -> None:
    """One log line for a scheduled run that was missed, skipped or failed."""
    if event.code == EVENT_JOB_MISSED:
        log.warning("scheduled run missed", job=event.job_id, due=when(event.scheduled_run_time))
    elif event.code == EVENT_JOB_MAX_INSTANCES:
        log.warning("scheduled run skipped: still running", job=event.job_id)
    else:
        log.error("scheduled job failed", job=event.job_id, error=repr(event.exception))
