"""Every read endpoint on a hand-written account: fields, time shapes, windows, 400s, 404s."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.anyio
NOVEMBER = "startDate=2026-11-01T00:00:00Z&endDate=2026-11-23T12:00:00Z"


async def get(sandbox: Any, path: str) -> Any:
    async with sandbox.client() as client:
        return await client.get("/G2M/rest" + path)


async def test_organizer_history_has_string_ids_and_dot_offset_times(tiny: Any) -> None:
    rows = (await get(tiny, f"/organizers/1001/historicalMeetings?{NOVEMBER}")).json()
    assert [row["sessionId"] for row in rows] == ["900001", "900002", "900005"]
    first = rows[0]
    assert first["startTime"] == "2026-11-02T10:00:00.+0000"
    assert first["endTime"] == "2026-11-02T10:45:00.+0000"
    assert (first["duration"], first["numAttendees"]) == ("45", "2")
    assert (first["organizerKey"], first["meetingId"]) == ("1001", "500000001")
    assert first["accountKey"] == "7000001"
    assert first["recording"]["recordingId"] == "rec-900001"
    assert first["recording"]["fileSize"] == 73400320
    assert "transcriptUrl" in first["recording"]
    assert "aiSummaryUrl" not in first["recording"]
    assert "recording" not in rows[1]


async def test_ongoing_and_future_sessions_are_not_history(tiny: Any) -> None:
    window = "startDate=2026-11-01T00:00:00Z&endDate=2026-12-31T00:00:00Z"
    rows = (await get(tiny, f"/organizers/1001/historicalMeetings?{window}")).json()
    ids = {row["sessionId"] for row in rows}
    assert "900003" not in ids  # started 11:30, ends 12:30, now is 12:00
    assert "900006" not in ids  # next week


async def test_history_window_includes_both_ends(tiny: Any) -> None:
    exact = "startDate=2026-11-02T10:00:00Z&endDate=2026-11-02T10:00:00Z"
    rows = (await get(tiny, f"/organizers/1001/historicalMeetings?{exact}")).json()
    assert [row["sessionId"] for row in rows] == ["900001"]


async def test_session_with_unknown_end_is_served_with_empty_end(tiny: Any) -> None:
    rows = (await get(tiny, f"/organizers/1002/historicalMeetings?{NOVEMBER}")).json()
    assert [(r["sessionId"], r["endTime"], r["duration"]) for r in rows] == [("900004", "", "")]


async def test_own_history_is_the_admin_organizers(tiny: Any) -> None:
    rows = (await get(tiny, f"/historicalMeetings?{NOVEMBER}")).json()
    assert [row["sessionId"] for row in rows] == ["900001", "900002", "900005"]


async def test_group_history_has_no_session_id_and_millisecond_times(tiny: Any) -> None:
    rows = (await get(tiny, f"/groups/10/historicalMeetings?{NOVEMBER}")).json()
    assert [(r["organizerKey"], r["startTime"]) for r in rows] == [
        ("1001", "2026-11-02T10:00:00.000Z"),
        ("1001", "2026-11-09T10:00:00.000Z"),
        ("1002", "2026-11-10T15:00:00.000Z"),
        ("1001", "2026-11-16T09:00:00.000Z"),
    ]
    assert all("sessionId" not in row and row["groupName"] == "Sales" for row in rows)


@pytest.mark.parametrize("call", ["historicalMeetings", "attendees", "upcomingMeetings"])
async def test_group_of_more_than_50_organizers_is_refused(tiny: Any, call: str) -> None:
    response = await get(tiny, f"/groups/20/{call}?{NOVEMBER}")
    assert response.status_code == 400
    assert "51 organizers" in response.json()["msg"]


async def test_organizers_of_a_big_group_are_listed(tiny: Any) -> None:
    rows = (await get(tiny, "/groups/20/organizers")).json()
    assert len(rows) == 51
    assert "organizerkey" not in rows[0]


async def test_meeting_history_pages_with_first_and_max_results(tiny: Any) -> None:
    base = "/meetings/500000001/historicalMeetings"
    assert [r["sessionId"] for r in (await get(tiny, base)).json()] == ["900001", "900002"]
    assert [r["sessionId"] for r in (await get(tiny, base + "?firstResult=1")).json()] == ["900002"]
    assert [r["sessionId"] for r in (await get(tiny, base + "?maxResults=1")).json()] == ["900001"]


async def test_meeting_history_defaults_to_the_last_30_days(tiny: Any) -> None:
    old = "?startDate=2026-01-01T00:00:00Z&endDate=2026-10-20T00:00:00Z"
    assert (await get(tiny, "/meetings/500000001/historicalMeetings" + old)).json() == []


async def test_attendees_by_meeting_use_bare_utc_times(tiny: Any) -> None:
    rows = (await get(tiny, "/meetings/500000001/attendees")).json()
    assert [(r["attendeeName"], r["joinTime"], r["leaveTime"]) for r in rows] == [
        ("Cy Diaz", "2026-11-02T10:01:00", "2026-11-02T10:44:00"),
        ("Di Eve", "2026-11-02T10:05:00", "2026-11-02T10:35:00"),
    ]
    assert rows[0]["meetingInstanceKey"] == 900001
    assert rows[0]["groupName"] == "NA"
    assert rows[0]["duration"] == 43


async def test_attendees_by_organizer_include_synthesized_lists(tiny: Any) -> None:
    rows = (await get(tiny, f"/organizers/1001/attendees?{NOVEMBER}")).json()
    assert [r["meetingInstanceKey"] for r in rows] == [900001, 900001, 900005, 900005, 900005]
    assert rows[0]["name"] == "Ana Lee"
    assert rows[0]["newMeetingId"] == "500-000-001"


async def test_attendees_by_group_use_millisecond_times_and_string_keys(tiny: Any) -> None:
    rows = (await get(tiny, f"/groups/10/attendees?{NOVEMBER}")).json()
    bo = [r for r in rows if r["organizerKey"] == "1002"]
    assert bo == [
        {
            "lastName": "Chen",
            "numAttendees": 1,
            "attendeeName": "Ed Fox",
            "subject": "Board prep",
            "conferenceCallInfo": "Hybrid",
            "organizerkey": 1002,
            "meetingInstanceKey": 900004,
            "email": "bo@example.com",
            "attendeeEmail": "ed@example.org",
            "meetingType": "scheduled",
            "firstName": "Bo",
            "groupName": "Sales",
            "organizerKey": "1002",
            "meetingId": "500000002",
            "startTime": "2026-11-10T15:00:00.000Z",
            "joinTime": "2026-11-10T15:00:00.000Z",
        }
    ]


async def test_upcoming_meetings_are_future_sessions(tiny: Any) -> None:
    rows = (await get(tiny, "/upcomingMeetings")).json()
    assert [(r["meetingId"], r["startTime"]) for r in rows] == [
        ("500000001", "2026-11-30T10:00:00.+0000")
    ]
    group_rows = (await get(tiny, "/groups/10/upcomingMeetings")).json()
    assert group_rows[0]["startTime"] == "2026-11-30T10:00:00.000Z"
    assert (await get(tiny, "/organizers/1002/upcomingMeetings")).json() == []


async def test_get_meeting_is_active_while_a_session_runs(tiny: Any) -> None:
    [meeting] = (await get(tiny, "/meetings/500000001")).json()
    assert (meeting["status"], meeting["meetingId"], meeting["passwordRequired"]) == (
        "ACTIVE",
        500000001,
        "false",
    )
    [board] = (await get(tiny, "/meetings/500000002")).json()
    assert (board["status"], board["passwordRequired"]) == ("INACTIVE", "true")


async def test_organizers_filter_by_email_ignoring_case(tiny: Any) -> None:
    rows = (await get(tiny, "/organizers?email=BO@example.com")).json()
    assert [(r["organizerKey"], r["organizerkey"]) for r in rows] == [(1002, 1002)]
    assert len((await get(tiny, "/organizers")).json()) == 53
    assert (await get(tiny, "/organizers?email=nobody@example.com")).json() == []


async def test_groups_list_their_size(tiny: Any) -> None:
    rows = (await get(tiny, "/groups")).json()
    assert [(r["groupkey"], r["numOrganizers"]) for r in rows] == [(10, 2), (20, 51)]


@pytest.mark.parametrize(
    "path",
    [
        "/organizers/9999",
        f"/organizers/9999/historicalMeetings?{NOVEMBER}",
        "/groups/99/organizers",
        "/meetings/1",
        "/meetings/1/attendees",
    ],
)
async def test_unknown_things_answer_404_with_a_json_body(tiny: Any, path: str) -> None:
    response = await get(tiny, path)
    assert response.status_code == 404
    assert response.json()["int_err_code"] == "NotFound"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("endDate=2026-11-23T00:00:00Z", "startDate"),
        ("startDate=2026-11-01T00:00:00Z", "endDate"),
        ("startDate=yesterday&endDate=2026-11-23T00:00:00Z", "startDate"),
        ("startDate=2026-11-01T00:00:00Z&endDate=2026-02-30T00:00:00Z", "endDate"),
        ("startDate=2026-11-20T00:00:00Z&endDate=2026-11-01T00:00:00Z", "endDate"),
    ],
)
async def test_bad_date_parameters_answer_400_naming_the_parameter(
    tiny: Any, query: str, named: str
) -> None:
    response = await get(tiny, f"/organizers/1001/historicalMeetings?{query}")
    assert response.status_code == 400
    assert named in response.json()["msg"]


async def test_malformed_path_key_and_paging_answer_400(tiny: Any) -> None:
    assert (await get(tiny, "/organizers/abc")).status_code == 400
    response = await get(tiny, "/meetings/500000001/historicalMeetings?maxResults=-1")
    assert response.status_code == 400
    assert "maxResults" in response.json()["msg"]


async def test_calls_without_a_valid_bearer_token_answer_403_invalid_token(tiny: Any) -> None:
    async with tiny.client(authorized=False) as client:
        missing = await client.get("/G2M/rest/groups")
        bogus = await client.get("/G2M/rest/groups", headers={"Authorization": "Bearer nope"})
    for response in (missing, bogus):
        assert response.status_code == 403
        assert response.json() == {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}
