"""The three deletions: what each removes, what stays, and 404 when the thing is not there."""

from __future__ import annotations

from typing import Any

import pytest

from retention.sandbox import account_state

pytestmark = pytest.mark.anyio
HISTORY = "/G2M/rest/meetings/500000001/historicalMeetings"


async def delete(sandbox: Any, path: str) -> Any:
    async with sandbox.client() as client:
        return await client.delete("/G2M/rest/organizers" + path)


async def history(sandbox: Any) -> dict[str, Any]:
    async with sandbox.client() as client:
        rows = (await client.get(HISTORY)).json()
    return {row["sessionId"]: row for row in rows}


async def test_delete_session_removes_it_with_attendees_and_recording(tiny: Any) -> None:
    response = await delete(tiny, "/1001/sessions/900001")
    assert (response.status_code, response.content) == (204, b"")
    assert "900001" not in await history(tiny)
    state = account_state(tiny.account)
    assert 900001 not in state["session_ids"]
    assert 900001 not in state["recording_session_ids"]
    assert 900001 not in state["attendee_session_ids"]
    assert (await delete(tiny, "/1001/sessions/900001")).status_code == 404


async def test_deleting_a_session_keeps_its_meeting(tiny: Any) -> None:
    await delete(tiny, "/1001/sessions/900001")
    async with tiny.client() as client:
        assert (await client.get("/G2M/rest/meetings/500000001")).status_code == 200


async def test_delete_session_of_another_organizer_is_404_and_changes_nothing(tiny: Any) -> None:
    response = await delete(tiny, "/1002/sessions/900001")
    assert response.status_code == 404
    assert response.json()["int_err_code"] == "NotFound"
    assert "900001" in await history(tiny)


async def test_delete_attendees_keeps_the_session_with_zero_attendees(tiny: Any) -> None:
    assert (await delete(tiny, "/1001/sessions/900001/attendees")).status_code == 204
    row = (await history(tiny))["900001"]
    assert row["numAttendees"] == "0"
    assert row["recording"]["recordingId"] == "rec-900001"
    async with tiny.client() as client:
        assert (await client.get("/G2M/rest/meetings/500000001/attendees")).json() == []
    assert (await delete(tiny, "/1001/sessions/900001/attendees")).status_code == 404


async def test_delete_attendees_of_a_session_without_any_is_404(tiny: Any) -> None:
    assert (await delete(tiny, "/1001/sessions/900002/attendees")).status_code == 404


async def test_delete_recordings_drops_the_recording_object(tiny: Any) -> None:
    assert (await delete(tiny, "/1001/sessions/900001/recordings")).status_code == 204
    row = (await history(tiny))["900001"]
    assert "recording" not in row
    assert row["numAttendees"] == "2"
    assert account_state(tiny.account)["recording_bytes"] == 0
    assert (await delete(tiny, "/1001/sessions/900001/recordings")).status_code == 404


async def test_delete_recordings_of_a_session_without_one_is_404(tiny: Any) -> None:
    assert (await delete(tiny, "/1001/sessions/900002/recordings")).status_code == 404


async def test_delete_of_unknown_organizer_or_session_is_404(tiny: Any) -> None:
    assert (await delete(tiny, "/9999/sessions/900001")).status_code == 404
    assert (await delete(tiny, "/1001/sessions/123")).status_code == 404


async def test_forced_delete_status_answers_without_deleting(tiny: Any) -> None:
    async with tiny.client() as client:
        await client.post("/_sandbox/control", json={"delete_status": 403})
        response = await client.delete("/G2M/rest/organizers/1001/sessions/900001")
    assert response.status_code == 403
    assert 900001 in account_state(tiny.account)["session_ids"]
