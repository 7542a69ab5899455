"""The sandbox's own time handling: parse ISO 8601 input, write the API's three time shapes."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_iso(text: str, *, zone_required: bool = True) -> int:
    """Epoch seconds of an ISO 8601 time such as `2021-07-01T22:00:00Z` (offsets allowed).

    Raises ValueError naming the text when it is not such a time. Without a zone the time is
    taken as UTC only when `zone_required` is false.
    """
    # the pattern keeps out the looser forms fromisoformat also accepts (dates, spaces)
    match = _ISO.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2021-07-01T22:00:00Z")
    if match.group(1) is None and zone_required:
        raise ValueError(f"{text!r} has no time zone; add Z for UTC")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a real calendar date and time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


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
