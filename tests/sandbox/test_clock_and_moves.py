"""The sandbox's Date header and its offset, moving organizers, and meeting history's owner rule."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from retention.sandbox import Account

pytestmark = pytest.mark.anyio
NOVEMBER = "startDate=2026-11-01T00:00:00Z&endDate=2026-11-23T12:00:00Z"
REAL = 1_900_000_000.0


def served_date(response: httpx.Response) -> float:
    return parsedate_to_datetime(response.headers["date"]).timestamp()


async def test_date_header_follows_the_clock_not_the_accounts_now(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    server = sandbox_asgi(tiny_account(), clock=lambda: REAL)
    async with server.client() as client:
        response = await client.get("/G2M/rest/groups")
    assert response.status_code == 200
    assert served_date(response) == REAL  # the account's now is 2026-11-23, far from this


async def test_date_offset_option_moves_the_date_header_of_api_and_token_answers(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    server = sandbox_asgi(tiny_account(), clock=lambda: REAL, date_offset=-3600)
    async with server.client() as client:
        api = await client.get("/G2M/rest/groups")
        token = await client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "sandbox-refresh"},
            auth=("sandbox-client", "sandbox-secret"),
        )
    assert token.status_code == 200
    assert served_date(api) == served_date(token) == REAL - 3600


async def test_date_offset_control_changes_the_header_at_run_time(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    server = sandbox_asgi(tiny_account(), clock=lambda: REAL)
    async with server.client() as client:
        shown = (await client.post("/_sandbox/control", json={"date_offset": 86_400})).json()
        response = await client.get("/G2M/rest/groups")
        refused = await client.post("/_sandbox/control", json={"date_offset": "soon"})
    assert shown["date_offset"] == 86_400
    assert served_date(response) == REAL + 86_400
    assert refused.status_code == 400
    assert "date_offset" in refused.json()["error"]


async def test_move_organizer_changes_group_listings_and_history_rows(tiny: Any) -> None:
    async with tiny.client() as client:
        answer = await client.post(
            "/_sandbox/control", json={"move_organizer": {"organizerKey": "1002", "groupKey": 20}}
        )
        members = (await client.get("/G2M/rest/groups/10/organizers")).json()
        organizer = (await client.get("/G2M/rest/organizers/1002")).json()[0]
        sales = (await client.get(f"/G2M/rest/groups/10/historicalMeetings?{NOVEMBER}")).json()
    assert answer.status_code == 200
    assert [str(row["organizerKey"]) for row in members] == ["1001"]
    assert (organizer["groupId"], organizer["groupName"]) == (20, "Everyone")
    assert {row["organizerKey"] for row in sales} == {"1001"}
    assert 1002 in tiny.account.group_members(20)


@pytest.mark.parametrize(
    "value",
    [
        {"organizerKey": 9999, "groupKey": 10},
        {"organizerKey": 1002, "groupKey": 99},
        {"organizerKey": "x", "groupKey": 10},
        {"organizerKey": 1002},
        [1002, 10],
    ],
)
async def test_move_organizer_refuses_what_is_not_an_organizer_and_a_group(
    tiny: Any, value: Any
) -> None:
    async with tiny.client() as client:
        answer = await client.post("/_sandbox/control", json={"move_organizer": value})
    assert answer.status_code == 400
    assert "move_organizer" in answer.json()["error"]
    account: Account = tiny.account
    assert account.organizers[1002].group_key == 10


async def test_meeting_history_of_another_organizers_meeting_answers_empty(tiny: Any) -> None:
    # Bo's board meeting: the token belongs to Ana, the admin, who may query only her own.
    window = "?startDate=2026-11-01T00:00:00Z&endDate=2026-11-23T12:00:00Z"
    async with tiny.client() as client:
        others = await client.get("/G2M/rest/meetings/500000002/historicalMeetings" + window)
        own = await client.get("/G2M/rest/meetings/500000001/historicalMeetings" + window)
        bo = await client.get(f"/G2M/rest/organizers/1002/historicalMeetings?{NOVEMBER}")
    assert others.status_code == 200
    assert others.json() == []
    assert [row["sessionId"] for row in own.json()] == ["900001", "900002"]
    assert [row["sessionId"] for row in bo.json()] == ["900004"]


def test_date_offset_flag_on_the_real_server(sandbox: Any) -> None:
    server = sandbox("--organizers", "3", "--date-offset", "-7200")
    response = httpx.get(
        f"{server.api_url}/groups", headers={"Authorization": f"Bearer {server.access_token()}"}
    )
    assert response.headers.get_list("date") == [response.headers["date"]]
    assert abs(served_date(response) - (time.time() - 7200)) < 60


async def test_a_retry_after_date_is_in_the_same_skewed_time_as_the_date_header(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    server = sandbox_asgi(
        tiny_account(), clock=lambda: REAL, date_offset=5000, rate_limit=1, retry_after="date"
    )
    async with server.client() as client:
        await client.get("/G2M/rest/groups")
        refused = await client.get("/G2M/rest/groups")
    assert refused.status_code == 429
    retry_at = parsedate_to_datetime(refused.headers["retry-after"]).timestamp()
    assert retry_at - served_date(refused) == 1.0
