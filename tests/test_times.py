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


@pytest.mark.parametrize(
    "text",
    ["last tuesday", "2026-13-01", "", "2026-05-01T25:00", "2026-W49", "2026-335", "20261201"],
)
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


NOW = datetime(2026, 12, 2, 1, 30, tzinfo=UTC)


def test_today_and_yesterday_are_days_as_dates_are() -> None:
    assert parse_user_time("today", option="--since", now=NOW) == datetime(2026, 12, 2, tzinfo=UTC)
    assert parse_user_time("Yesterday", option="--since", now=NOW) == datetime(
        2026, 12, 1, tzinfo=UTC
    )
    # As an upper bound a day includes itself: --until yesterday ends where today starts.
    assert parse_user_time("yesterday", option="--until", end_of_day=True, now=NOW) == datetime(
        2026, 12, 2, tzinfo=UTC
    )
    assert parse_user_time("today", option="--until", end_of_day=True, now=NOW) == datetime(
        2026, 12, 3, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", datetime(2026, 11, 25, 1, 30, tzinfo=UTC)),
        ("-7d", datetime(2026, 11, 25, 1, 30, tzinfo=UTC)),
        ("+30d", datetime(2027, 1, 1, 1, 30, tzinfo=UTC)),
        ("12h", datetime(2026, 12, 1, 13, 30, tzinfo=UTC)),
        ("2w", datetime(2026, 11, 18, 1, 30, tzinfo=UTC)),
    ],
)
def test_a_span_counts_back_from_now_or_ahead_with_a_plus(text: str, expected: datetime) -> None:
    assert parse_user_time(text, option="--as-of", now=NOW) == expected
    # A span is a moment, not a day: as an upper bound it stays where it is.
    assert parse_user_time(text, option="--until", end_of_day=True, now=NOW) == expected


def test_relative_forms_follow_the_clock_they_are_given() -> None:
    later = datetime(2027, 3, 1, 12, tzinfo=UTC)
    assert parse_user_time("today", option="--since", now=later) == datetime(2027, 3, 1, tzinfo=UTC)
    assert parse_user_time("1d", option="--since", now=later) == datetime(
        2027, 2, 28, 12, tzinfo=UTC
    )


@pytest.mark.parametrize("text", ["7x", "+d", "tomorrow", "7 d", "+9999999d"])
def test_a_malformed_span_is_invalid_input_with_the_forms_in_the_hint(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_user_time(text, option="--since", now=NOW)
    assert str(caught.value).startswith(f"--since {text!r} is not a date or time")
    assert caught.value.hint is not None
    assert "7d" in caught.value.hint
    assert "+30d" in caught.value.hint


def test_a_span_beyond_the_years_is_out_of_range() -> None:
    with pytest.raises(InvalidInput, match="out of range"):
        parse_user_time("+400000w", option="--as-of", now=NOW)
