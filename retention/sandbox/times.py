"""The sandbox's own time handling: parse ISO 8601 input, write the API's three time shapes."""

from __future__ import annotations

import calendar
import re
import time

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_iso(text: str, *, zone_required: bool = True) -> int:
    """Epoch seconds of an ISO 8601 time such as `2021-07-01T22:00:00Z` (offsets allowed).

    Raises ValueError naming the text when it is not such a time. Without a zone the time is
    taken as UTC only when `zone_required` is false.
    """
    match = _ISO.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2021-07-01T22:00:00Z")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    zone = match.group(7)
    if zone is None and zone_required:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC")
    epoch = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    # timegm rolls 2021-02-30 over into March; a real date survives the round trip.
    if hour > 23 or minute > 59 or second > 59 or time.gmtime(epoch)[1:3] != (month, day):
        raise ValueError(f"{text!r} is not a real calendar date and time")
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def _base(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))


def iso_z(epoch: int) -> str:
    """`2021-07-01T23:00:00Z`: the data file's shape."""
    return _base(epoch) + "Z"


def dot_offset(epoch: int | None) -> str:
    """`2021-07-01T23:00:00.+0000` (organizer and meeting history), empty when unknown."""
    return "" if epoch is None else _base(epoch) + ".+0000"


def millis_z(epoch: int | None) -> str:
    """`2021-07-01T23:00:00.000Z` (group endpoints), empty when unknown."""
    return "" if epoch is None else _base(epoch) + ".000Z"


def bare(epoch: int | None) -> str:
    """`2021-07-01T23:00:00` (attendee endpoints, UTC without a zone), empty when unknown."""
    return "" if epoch is None else _base(epoch)


def http_date(epoch: float) -> str:
    """An RFC 9110 HTTP-date, for `Retry-After` in its date form."""
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(epoch))
