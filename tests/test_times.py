"""Times a user types: one rule for a missing zone, and a bad value named by its option."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from retention.errors import InvalidInput
from retention.times import parse_stored_time, parse_user_time


def test_time_without_a_zone_is_utc_and_a_zone_is_converted() -> None:
    assert parse_user_time("2026-05-01T08:30", option="--as-of") == datetime(
        2026, 5, 1, 8, 30, tzinfo=UTC
    )
    assert parse_user_time("2026-05-01T10:30+02:00", option="--as-of") == datetime(
        2026, 5, 1, 8, 30, tzinfo=UTC
    )
    assert parse_user_time("2026-05-01T08:30:00Z", option="--as-of").tzinfo is UTC


def test_a_date_is_its_midnight_or_as_an_upper_bound_the_next() -> None:
    assert parse_user_time("2026-05-01", option="--since") == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_user_time("2026-05-01", option="--until", end_of_day=True) == datetime(
        2026, 5, 2, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["last tuesday", "2026-13-01", "", "2026-05-01T25:00"])
def test_a_bad_value_is_invalid_input_naming_the_option(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_user_time(text, option="--since")
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"--since {text!r} is not a date or time")


def test_a_year_that_would_overflow_is_refused() -> None:
    with pytest.raises(InvalidInput, match="--as-of '0001-01-01' is out of range"):
        parse_user_time("0001-01-01", option="--as-of")


def test_stored_times_come_back_aware_in_utc() -> None:
    assert parse_stored_time("2026-05-01T10:30:00+02:00") == datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="Invalid isoformat"):
        parse_stored_time("yesterday")
