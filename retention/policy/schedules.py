"""The one grammar of a schedule (a policy's, RETENTION_DEFAULT_SCHEDULE) and its trigger.

A schedule is a 5-field crontab in UTC, or `@every N[s|m|h]`: an interval meant for trials and
tests (a crontab fires at most once a minute).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"^@every\s+(\d+)\s*([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


class ScheduleError(ValueError):
    """A schedule that is neither form; the message names it, `hint` says what to write."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def schedule_trigger(spec: str, *, start: datetime | None = None) -> BaseTrigger:
    """A cron trigger for a 5-field crontab (UTC), an interval trigger for `@every N[s|m|h]`.

    An interval first fires one interval after `start` (default: now, as APScheduler has it);
    `start` lets a test walk the schedules on its own clock. A crontab fires at its times."""
    text = spec.strip()
    every = _EVERY.match(text)
    if every:
        seconds = int(every.group(1)) * _UNIT_SECONDS[every.group(2)]
        if seconds < 1:
            raise ScheduleError(
                f"{spec!r} is an interval of zero", "write e.g. @every 2s, @every 15m or @every 6h"
            )
        first = None if start is None else start + timedelta(seconds=seconds)
        return IntervalTrigger(seconds=seconds, start_date=first, timezone=UTC)
    if text.startswith("@"):
        raise ScheduleError(
            f"{spec!r} is neither a 5-field crontab nor `@every N[s|m|h]`",
            'write e.g. "0 3 * * *" (03:00 UTC daily) or "@every 15m"',
        )
    try:
        return CronTrigger.from_crontab(text, timezone=UTC)
    except ValueError as exc:
        raise ScheduleError(
            f"{spec!r} is not a 5-field crontab (minute hour day month weekday): {exc}",
            'write minute hour day month weekday, e.g. "0 3 * * *"',
        ) from None
