"""Time shapes and lenient item parsing: every shape the API sends, every problem named."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from retention.goto.models import Group, HistoricalSession, parse_items
from retention.times import TimeFormatError, format_query_time, parse_api_time

JULY_1_23H = datetime(2021, 7, 1, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-07-01T23:00:00.+0000", JULY_1_23H),
        ("2021-07-01T23:00:00.000Z", JULY_1_23H),
        ("2021-07-01T23:00:00", JULY_1_23H),
        ("2021-07-02T01:00:00.+0200", JULY_1_23H),
        ("2021-07-01T19:00:00.-04:00", JULY_1_23H),
        ("2021-07-01T23:00:00.250Z", datetime(2021, 7, 1, 23, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_every_api_time_shape_parses_to_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_api_time(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() is not None


def test_empty_time_is_unknown() -> None:
    assert parse_api_time("") is None
    assert parse_api_time(None) is None


@pytest.mark.parametrize(
    "text", ["yesterday", "2021-13-01T00:00:00", "2021-07-01 23:00", "1625180400"]
)
def test_time_in_no_known_shape_is_refused(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_api_time(text)


def test_query_times_use_the_documented_utc_form() -> None:
    assert format_query_time(JULY_1_23H) == "2021-07-01T23:00:00Z"


def _session(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {
        "sessionId": "11",
        "meetingId": "22",
        "organizerKey": "33",
        "email": "o@example.org",
        "subject": "Weekly",
        "meetingType": "recurring",
        "startTime": "2021-07-01T23:00:00.+0000",
        "endTime": "2021-07-01T23:30:00.+0000",
        "duration": "30",
        "numAttendees": "4",
        "recording": {"recordingId": "r-1", "recordingName": "Weekly", "fileSize": 2048},
    }
    item.update(changes)
    return item


def test_string_typed_numbers_become_ints() -> None:
    parsed = parse_items(HistoricalSession, [_session()], "GET /x")
    (session,) = parsed.items
    assert (session.session_id, session.meeting_id, session.organizer_key) == (11, 22, 33)
    assert (session.duration, session.num_attendees) == (30, 4)
    assert session.recording is not None
    assert session.recording.file_size == 2048
    assert parsed.problems == []


def test_malformed_field_is_unknown_and_named_with_its_endpoint() -> None:
    parsed = parse_items(HistoricalSession, [_session(numAttendees="many")], "GET /org/33")
    (session,) = parsed.items
    assert session.num_attendees is None
    (problem,) = parsed.problems
    assert problem.name == "numAttendees"
    assert not problem.dropped
    assert "GET /org/33" in problem.describe()
    assert "numAttendees" in problem.describe()


def test_omitted_field_is_a_problem_not_a_default() -> None:
    item = _session()
    del item["duration"]
    parsed = parse_items(HistoricalSession, [item], "GET /x")
    assert parsed.items[0].duration is None
    assert [p.name for p in parsed.problems] == ["duration"]
    assert parsed.problems[0].problem == "is missing"


def test_item_without_a_readable_session_id_is_reported_not_kept() -> None:
    parsed = parse_items(HistoricalSession, [_session(sessionId="x1"), _session()], "GET /x")
    assert [s.session_id for s in parsed.items] == [11]
    assert parsed.problems[0].dropped
    assert parsed.problems[0].keys == {"meetingId": "22", "organizerKey": "33"}


def test_malformed_recording_size_keeps_the_recording_with_unknown_size() -> None:
    parsed = parse_items(
        HistoricalSession, [_session(recording={"recordingId": "r", "fileSize": "big"})], "GET /x"
    )
    recording = parsed.items[0].recording
    assert recording is not None
    assert (recording.recording_id, recording.file_size) == ("r", None)
    assert parsed.problems[0].name == "recording.fileSize"


def test_session_repr_shows_no_subject_or_email() -> None:
    parsed = parse_items(HistoricalSession, [_session(subject="Layoffs Q3")], "GET /x")
    text = repr(parsed.items[0])
    assert "Layoffs" not in text
    assert "o@example.org" not in text


def test_group_listing_parses_numbers_from_strings() -> None:
    item = {
        "groupkey": "5",
        "groupName": "Sales",
        "parentKey": 5,
        "status": "active",
        "numOrganizers": "12",
    }
    parsed = parse_items(Group, [item], "GET /groups")
    assert parsed.items[0].num_organizers == 12
