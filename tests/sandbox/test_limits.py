"""Rate limit, Retry-After forms, 429 bursts, seeded faults, latency, control, request log."""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from retention.sandbox import account_state
from retention.sandbox.faults import ConnectionDropped

pytestmark = pytest.mark.anyio
GROUPS = "/G2M/rest/groups"


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def statuses(client: Any, count: int, path: str = GROUPS) -> list[int]:
    return [(await client.get(path)).status_code for _ in range(count)]


async def test_rate_limit_admits_r_requests_per_sliding_second(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    clock = FakeClock()
    sandbox = sandbox_asgi(tiny_account(), rate_limit=3, clock=clock)
    async with sandbox.client() as client:
        assert await statuses(client, 3) == [200, 200, 200]
        clock.now += 0.5
        refused = await client.get(GROUPS)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        clock.now += 0.5
        assert await statuses(client, 4) == [200, 200, 200, 429]


async def test_rate_limit_without_retry_after_sends_no_header(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    sandbox = sandbox_asgi(tiny_account(), rate_limit=1, retry_after="absent", clock=FakeClock())
    async with sandbox.client() as client:
        await client.get(GROUPS)
        refused = await client.get(GROUPS)
    assert refused.status_code == 429
    assert "retry-after" not in refused.headers


async def test_retry_after_can_be_an_http_date_or_fixed_seconds(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    clock = FakeClock()
    sandbox = sandbox_asgi(tiny_account(), rate_limit=1, retry_after="date", clock=clock)
    async with sandbox.client() as client:
        await client.get(GROUPS)
        dated = await client.get(GROUPS)
        await client.post("/_sandbox/control", json={"retry_after": 7})
        fixed = await client.get(GROUPS)
    assert parsedate_to_datetime(dated.headers["retry-after"]).timestamp() == clock.now + 1
    assert fixed.headers["retry-after"] == "7"


async def test_burst_429_refuses_the_next_n_api_requests_only(tiny: Any) -> None:
    async with tiny.client() as client:
        await client.post("/_sandbox/control", json={"burst_429": 2})
        assert (await client.get("/_sandbox/state")).status_code == 200
        assert await statuses(client, 3) == [429, 429, 200]


async def _fault_run(sandbox_asgi: Any, tiny_account: Any, seed: int) -> list[str]:
    sandbox = sandbox_asgi(tiny_account(), fault_rate=0.5, seed=seed)
    outcomes = []
    async with sandbox.client() as client:
        for _ in range(60):
            try:
                outcomes.append(str((await client.get(GROUPS)).status_code))
            except ConnectionDropped:
                outcomes.append("dropped")
    return outcomes


async def test_faults_follow_the_seed(sandbox_asgi: Any, tiny_account: Any) -> None:
    first = await _fault_run(sandbox_asgi, tiny_account, seed=7)
    assert first == await _fault_run(sandbox_asgi, tiny_account, seed=7)
    assert first != await _fault_run(sandbox_asgi, tiny_account, seed=8)
    assert {"200", "500", "502", "503", "dropped"} <= set(first)


async def test_a_faulted_delete_changes_nothing(sandbox_asgi: Any, tiny_account: Any) -> None:
    sandbox = sandbox_asgi(tiny_account(), fault_rate=1.0)
    async with sandbox.client() as client:
        for _ in range(10):
            try:
                response = await client.delete("/G2M/rest/organizers/1001/sessions/900001")
                assert response.status_code in (500, 502, 503)
            except ConnectionDropped:
                pass
    assert 900001 in account_state(sandbox.account)["session_ids"]


async def test_latency_is_added_to_api_and_oauth_responses(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    sandbox = sandbox_asgi(tiny_account(), latency_ms=250, sleep=record)
    async with sandbox.client() as client:
        await client.get(GROUPS)
        await client.get("/_sandbox/state")
        await client.post("/oauth/token", data={})
    assert slept == [0.25, 0.25]


async def test_control_rejects_bad_values_naming_them(tiny: Any) -> None:
    async with tiny.client() as client:
        response = await client.post("/_sandbox/control", json={"fault_rate": 2, "nope": 1})
        assert response.status_code == 400
        assert "fault_rate" in response.json()["error"]
        assert "nope" in response.json()["error"]
        shown = (await client.post("/_sandbox/control", json={"latency_ms": 5})).json()
        assert shown["latency_ms"] == 5
        assert (await client.get("/_sandbox/control")).json() == shown


async def test_request_log_lists_every_request_in_order(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    clock = FakeClock()
    sandbox = sandbox_asgi(tiny_account(), clock=clock)
    async with sandbox.client() as client:
        await client.get(GROUPS)
        clock.now += 1
        await client.get("/G2M/rest/meetings/1")
        log = (await client.get("/_sandbox/requests")).json()
        tail = (await client.get("/_sandbox/requests?since=1")).json()
    assert [(e["t"], e["method"], e["path"], e["status"]) for e in log] == [
        (clock.now - 1, "GET", GROUPS, 200),
        (clock.now, "GET", "/G2M/rest/meetings/1", 404),
    ]
    assert tail == log[1:]
