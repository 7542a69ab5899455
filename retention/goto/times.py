"""Parsing of the API's time shapes into aware UTC datetimes, and formatting of query dates."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# One pattern for every shape the API sends: `2021-07-01T23:00:00.+0000` (organizer and
# meeting history), `2021-07-01T23:00:00.000Z` (group history), `2021-07-01T23:00:00`
# (attendees: UTC without a zone). The fraction may be empty, the zone absent.
_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d*))?"
    r"(?P<zone>Z|[+-]\d{2}:?\d{2})?$"
)


class TimeFormatError(ValueError):
    """A time string in none of the API's shapes."""


def parse_api_time(value: object) -> datetime | None:
    """Parse an API time into an aware UTC datetime; an empty string or null is unknown (None)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TimeFormatError(f"expected a time string, got {type(value).__name__}")
    match = _TIME.match(value.strip())
    if match is None:
        raise TimeFormatError(f"not a time in any of the API's shapes: {value!r}")
    try:
        base = datetime.strptime(match["base"], "%Y-%m-%dT%H:%M:%S")  # noqa: DTZ007
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
