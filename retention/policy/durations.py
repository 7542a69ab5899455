"""Retention periods: `90d`, `12w`, `6m`, `7y` or ISO 8601 (`P1Y2M`), in calendar arithmetic."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from dateutil.relativedelta import relativedelta

MAX_YEARS = 100

_SHORT = re.compile(r"(?P<count>\d+)(?P<unit>[dwmy])")
_ISO = re.compile(r"P(?!$)(?:(?P<y>\d+)Y)?(?:(?P<m>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?")
DURATION_PATTERN = r"^([0-9]+[dwmy]|P([0-9]+Y)?([0-9]+M)?([0-9]+W)?([0-9]+D)?)$"


@dataclass(frozen=True, slots=True)
class Duration:
    """A calendar period. Months and years follow the calendar (dateutil's relativedelta)."""

    years: int = 0
    months: int = 0
    days: int = 0
    # Built once: decide adds the period to many end times.
    delta: relativedelta = field(init=False, repr=False, compare=False)
    negative: relativedelta = field(init=False, repr=False, compare=False)
    fixed: timedelta | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        delta = relativedelta(years=self.years, months=self.months, days=self.days)
        object.__setattr__(self, "delta", delta)
        object.__setattr__(self, "negative", -delta)
        fixed = timedelta(days=self.days) if not (self.years or self.months) else None
        object.__setattr__(self, "fixed", fixed)

    @property
    def iso(self) -> str:
        """Canonical ISO 8601 text: what a content hash and a report record."""
        parts = [(self.years, "Y"), (self.months, "M"), (self.days, "D")]
        return "P" + "".join(f"{count}{unit}" for count, unit in parts if count)

    def __str__(self) -> str:
        return self.iso

    def cutoff(self, as_of: datetime) -> datetime:
        """The latest end time a session may have and still be this old at `as_of`."""
        return as_of + self.negative

    def due_at(self, end_time: datetime) -> datetime:
        """The first moment at which a session that ended at `end_time` is this old.

        A session is old enough when `end_time <= as_of - period`. Adding the period to the end
        time gives that moment, except when the calendar clamps a month end (31 January plus one
        month is 28 February, yet 28 February minus one month is 28 January): then the first
        moment is the start of the following month.
        """
        if self.fixed is not None:
            return end_time + self.fixed
        # The calendar works on the date alone (the time of day is carried unchanged), so the
        # answer is computed once per date: decide asks for it for many sessions.
        due_day, clamped = _calendar_due(self, end_time.date())
        if clamped:
            return datetime.combine(due_day, time(0), tzinfo=end_time.tzinfo)
        return end_time + (due_day - end_time.date())


@lru_cache(maxsize=65_536)
def _calendar_due(duration: Duration, day: date) -> tuple[date, bool]:
    """The due date for a session ending on `day`, and whether month-end clamping moved it."""
    candidate: date = day + duration.delta
    if candidate + duration.negative >= day:
        return candidate, False
    return candidate.replace(day=1) + relativedelta(months=1), True


def parse_duration(text: str) -> Duration:
    """Read a duration, raising ValueError with a message meant for a compliance officer."""
    if text.startswith("-"):
        raise ValueError(f"{text!r} is negative: a period must be at least one day")
    try:
        return _parse_bounded(text)
    except OverflowError:
        # A count too big for the calendar (99999999999y) is far past any bound.
        raise ValueError(_too_long(text)) from None


def _too_long(text: str) -> str:
    return (
        f"{text!r} is longer than {MAX_YEARS} years: such a period never ends in practice;"
        " use a legal hold to keep something indefinitely"
    )


def _parse_bounded(text: str) -> Duration:
    short = _SHORT.fullmatch(text)
    if short:
        count, unit = int(short["count"]), short["unit"]
        duration = {
            "d": Duration(days=count),
            "w": Duration(days=7 * count),
            "m": Duration(months=count),
            "y": Duration(years=count),
        }[unit]
    else:
        iso = _ISO.fullmatch(text)
        if iso is None:
            raise ValueError(
                f"{text!r} is not a duration: write e.g. 90d, 12w, 6m, 7y or P1Y6M"
                " (days, weeks, calendar months, calendar years)"
            )
        weeks = int(iso["w"] or 0)
        duration = Duration(int(iso["y"] or 0), int(iso["m"] or 0), int(iso["d"] or 0) + 7 * weeks)
    _check_bounds(text, duration)
    return duration


def _check_bounds(text: str, duration: Duration) -> None:
    if duration == Duration():
        raise ValueError(f"{text!r} is a zero duration: a period must be at least one day")
    reference = datetime(2000, 1, 1, tzinfo=UTC)
    if reference + duration.delta > reference + timedelta(days=366 * MAX_YEARS):
        raise ValueError(_too_long(text))
