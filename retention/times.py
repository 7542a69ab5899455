"""Times: the API's shapes, the times a user types, and the ISO form the service writes itself.

Every time leaves this module as an aware UTC datetime. The API's shapes are parsed with the
standard library behind one shape guard; what a user types goes through `parse_user_time`
(dates, ISO times, `today`, `yesterday`, `7d` ago and `+30d` ahead).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone

from retention.errors import InvalidInput

# One pattern for every shape the API sends: `2021-07-01T23:00:00.+0000` (organizer and
# meeting history), `2021-07-01T23:00:00.000Z` (group history), `2021-07-01T23:00:00`
# (attendees: UTC without a zone). The fraction may be empty, the zone absent.
_API_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d*))?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A date, then a time: the extended forms only (no week dates, ordinal days or basic forms).
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
# `7d` is seven days ago, `+30d` thirty days ahead; h (hours) and w (weeks) likewise.
_RELATIVE = re.compile(r"^(?P<sign>[+-]?)(?P<count>\d{1,6})(?P<unit>[hdw])$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_DAYS_BACK = {"today": 0, "yesterday": 1}
# Years a user may name: far enough for any retention period, near enough that adding one
# never overflows the datetime range.
_FIRST_YEAR, _LAST_YEAR = 1970, 9000


class TimeFormatError(ValueError):
    """A time string in none of the API's shapes."""


def parse_api_time(value: object) -> datetime | None:
    """Parse an API time into an aware UTC datetime; an empty string or null is unknown (None)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TimeFormatError(f"expected a time string, got {type(value).__name__}")
    match = _API_TIME.match(value.strip())
    if match is None:
        raise TimeFormatError(f"not a time in any of the API's shapes: {value!r}")
    try:
        base = datetime.fromisoformat(match["base"])
    except ValueError as exc:
        raise TimeFormatError(f"not a valid date and time: {value!r}") from exc
    fraction = match["fraction"] or ""
    if fraction:
        base += timedelta(microseconds=int(fraction[:6].ljust(6, "0")))
    return base.replace(tzinfo=_zone(match["zone"])).astimezone(UTC)


def _zone(text: str | None) -> timezone:
    if text is None or text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return timezone(-offset if text[0] == "-" else offset)


def format_query_time(moment: datetime) -> str:
    """A query bound in the documented ISO 8601 UTC form, e.g. `2021-07-01T22:00:00Z`."""
    if moment.tzinfo is None:
        raise ValueError("query times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_date(text: str) -> date:
    """A calendar date as people write it here, YYYY-MM-DD; ValueError for anything else
    (the ISO week and ordinal forms `2026-W49`, `2026-335` name a day less plainly)."""
    value = text.strip()
    if not _DATE.match(value):
        raise ValueError(f"{text!r} is not a date written YYYY-MM-DD")
    return date.fromisoformat(value)


def parse_user_time(
    text: str, *, option: str, end_of_day: bool = False, now: datetime | None = None
) -> datetime:
    """A time a person wrote (`option` names where), as an aware UTC datetime.

    Accepted: a date, an ISO 8601 time, `today` or `yesterday` (the day, like a date), and a
    span from `now` (the host clock when not given): `7d` is 7 days ago, `+30d` 30 days ahead
    (`h` hours, `w` weeks). The one rule for a missing zone: a time without a zone is UTC, and
    a day is the midnight (UTC) that starts it, or with `end_of_day` the midnight that ends it,
    so that a day given as an upper bound includes that day. A bad value is an InvalidInput
    naming `option`.
    """
    value = text.strip()
    word = value.lower()
    try:
        if word in _DAYS_BACK or _RELATIVE.match(word):
            moment = _relative(word, now or datetime.now(UTC), end_of_day=end_of_day)
        elif _DATE.match(value):
            moment = _day_start(parse_date(value), end_of_day=end_of_day)
        else:
            moment = _iso_time(value)
    except (ValueError, OverflowError):
        raise InvalidInput(
            f"{option} {text!r} is not a date or time",
            hint="use YYYY-MM-DD, an ISO 8601 time such as 2026-05-01T00:00:00Z (a time"
            " without a zone is UTC), today, yesterday, 7d (7 days ago) or +30d (30 days ahead)",
        ) from None
    if not _FIRST_YEAR <= moment.year <= _LAST_YEAR:
        raise InvalidInput(
            f"{option} {text!r} is out of range",
            hint=f"give a time between the years {_FIRST_YEAR} and {_LAST_YEAR}",
        )
    return moment


def _iso_time(value: str) -> datetime:
    """An ISO 8601 date and time, extended form; without a zone it is UTC. ValueError if not."""
    if not _ISO_TIME.match(value):
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


def _relative(word: str, now: datetime, *, end_of_day: bool) -> datetime:
    """`today`, `yesterday` (days, as dates are) or a span such as `7d`, `+30d`, `-12h`."""
    reference = now.astimezone(UTC)
    if word in _DAYS_BACK:
        day = reference.date() - timedelta(days=_DAYS_BACK[word])
        return _day_start(day, end_of_day=end_of_day)
    match = _RELATIVE.match(word)
    assert match is not None
    span = int(match["count"]) * _UNIT[match["unit"]]
    return reference + span if match["sign"] == "+" else reference - span


def _day_start(day: date, *, end_of_day: bool) -> datetime:
    moment = datetime.combine(day, time(0), tzinfo=UTC)
    return moment + timedelta(days=1) if end_of_day else moment


def parse_stored_time(text: str) -> datetime:
    """An ISO time the service wrote itself (state database, plan and token files), in UTC.

    The service always writes a zone; ValueError when the text is not an ISO time.
    """
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_REPEAT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def repeat_seconds(text: str) -> float:
    """`24h`, `90m`, `30s`, `2d` or a bare number of seconds, as seconds (at least one)."""
    found = _REPEAT.match(text)
    if found is None or float(found.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration such as 24h, 90m or 3600")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
