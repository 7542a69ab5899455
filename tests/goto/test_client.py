"""The client against the in-process sandbox: tokens, rotation, 429s, deletes, deadlines."""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import SecretStr

from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.errors import ApiError, NotFound, RateLimited, TokenStoreError
from retention.goto.tokenstore import TokenStore

pytestmark = pytest.mark.anyio
E = TypeVar("E", bound=Exception)


class VirtualTime:
    """An injected clock and sleep: sleeping records the wait and moves the clock, instantly."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.asked: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def options(self) -> dict[str, Any]:
        return {"clock": self.clock, "sleep": self.sleep}


def make_client(
    transport: httpx.AsyncBaseTransport, store_path: Path, **options: Any
) -> GoToClient:
    auth = TokenManager(
        "http://sandbox/oauth/token",
        "sandbox-client",
        SecretStr("sandbox-secret"),
        TokenStore(store_path),
        SecretStr("sandbox-refresh"),
        transport=transport,
    )
    options.setdefault("rate_limit", 1000.0)
    return GoToClient("http://sandbox/G2M/rest", auth, **options)


def token_requests(app: Any, since: int = 0) -> int:
    return sum(1 for entry in app.state.log.since(since) if entry["path"] == "/oauth/token")


async def test_organizer_history_returns_the_accounts_finished_sessions(sandbox_asgi, tmp_path):
    sandbox = sandbox_asgi()
    account = sandbox.account
    organizer_key = next(iter(account.organizers))
    now = account.now
    start = now - 30 * 86_400
    expected = {
        s.session_id
        for s in account.organizer_sessions(organizer_key, start, now)
        if s.end is not None and s.end <= now
    }
    async with make_client(sandbox.transport, tmp_path / "t.json") as client:
        parsed = await client.organizer_history(organizer_key, _utc(start), _utc(now))
    assert {s.session_id for s in parsed.items} == expected
    assert parsed.problems == []
    assert all(
        s.start_time is not None and s.start_time.utcoffset() == timedelta(0) for s in parsed.items
    )


async def test_invalid_token_answer_refreshes_once_and_retries(sandbox_asgi, tmp_path):
    sandbox = sandbox_asgi()
    async with make_client(sandbox.transport, tmp_path / "t.json") as client:
        await client.groups()
        before = len(sandbox.app.state.log.entries)
        sandbox.app.state.tokens.revoke_all()  # the API now answers 403 InvalidToken
        groups = await client.groups()
    assert len(groups.items) == len(sandbox.account.groups)
    assert token_requests(sandbox.app, before) == 1
    assert client.stats.token_retries == 1


async def test_fifty_concurrent_calls_on_an_expired_token_cause_one_refresh(sandbox_asgi, tmp_path):
    sandbox = sandbox_asgi()
    async with make_client(sandbox.transport, tmp_path / "t.json") as client:
        await client.groups()
        before = len(sandbox.app.state.log.entries)
        sandbox.app.state.tokens.revoke_all()
        results = await asyncio.gather(*(client.groups() for _ in range(50)))
    assert all(len(r.items) == len(sandbox.account.groups) for r in results)
    assert token_requests(sandbox.app, before) == 1


async def test_rotated_refresh_token_is_stored_before_the_access_token_is_used(
    sandbox_asgi, tmp_path
):
    sandbox = sandbox_asgi()
    store = TokenStore(tmp_path / "t.json")
    seen_on_disk: list[str | None] = []

    class RememberStoreOnApiRequest(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "/G2M/rest" in request.url.path:
                stored = store.load()
                seen_on_disk.append(stored.refresh_token if stored else None)
            return await sandbox.transport.handle_async_request(request)

    async with make_client(RememberStoreOnApiRequest(), store.path) as client:
        await client.groups()
    live_refresh_tokens = sandbox.app.state.tokens.refresh
    assert seen_on_disk
    assert seen_on_disk[0] in live_refresh_tokens
    assert "sandbox-refresh" not in live_refresh_tokens  # it was rotated away
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o600


async def test_refresh_whose_new_token_cannot_be_saved_sends_no_further_request(
    sandbox_asgi, tmp_path
):
    sandbox = sandbox_asgi()
    store_path = tmp_path / "t.json"
    # A directory where the temporary file must go: writing fails, even as root.
    (tmp_path / f".t.json.{os.getpid()}.tmp").mkdir()
    async with make_client(sandbox.transport, store_path) as client:
        with pytest.raises(TokenStoreError) as raised:
            await client.groups()
        with pytest.raises(TokenStoreError):
            await client.organizers()
    paths = [entry["path"] for entry in sandbox.app.state.log.entries]
    assert paths == ["/oauth/token"]
    assert "sandbox-refresh" not in str(raised.value)


@pytest.mark.parametrize(
    ("mode", "lowest", "highest"),
    [(7, 7.0, 7.0), ("date", 0.0, 2.0), ("auto", 1.0, 1.0)],
)
async def test_429_honours_retry_after_in_seconds_and_as_a_date(
    sandbox_asgi, tmp_path, mode, lowest, highest
):
    sandbox = sandbox_asgi(retry_after=mode)
    time = VirtualTime()
    async with make_client(sandbox.transport, tmp_path / "t.json", **time.options()) as client:
        await client.groups()
        sandbox.app.state.controls.burst_429 = 2
        await client.groups()
    assert len(time.asked) == 2
    assert all(lowest <= wait <= highest for wait in time.asked)
    assert client.stats.rate_limited == 2
    assert client.limiter.current_rate < client.limiter.rate


async def test_429_without_retry_after_backs_off_with_growing_jittered_waits(
    sandbox_asgi, tmp_path
):
    sandbox = sandbox_asgi(retry_after="absent")
    time = VirtualTime()
    async with make_client(
        sandbox.transport, tmp_path / "t.json", backoff_initial=1.0, **time.options()
    ) as client:
        await client.groups()
        sandbox.app.state.controls.burst_429 = 4
        await client.groups()
    assert client.stats.retries == 4
    # Every caller paused a full second per 429 (the shared limiter), plus jittered backoff.
    assert math.fsum(time.asked) >= 4.0 - 1e-9  # the pauses' parts add up to whole seconds
    assert len(set(time.asked)) > 1
    assert client.stats.rate_limited == 4


async def raised_after_attempts(
    sandbox: Any,
    tmp_path: Path,
    error: type[E],
    call: Callable[[GoToClient], Awaitable[object]],
    **faults: int,
) -> tuple[E, GoToClient]:
    """With three attempts a call: one call that passes, then `faults` set on the sandbox's
    controls, then `call`, which must raise `error`; the error and the client."""
    async with make_client(
        sandbox.transport, tmp_path / "t.json", max_attempts=3, **VirtualTime().options()
    ) as client:
        await client.groups()
        for name, value in faults.items():
            setattr(sandbox.app.state.controls, name, value)
        with pytest.raises(error) as raised:
            await call(client)
    return raised.value, client


async def test_429s_beyond_the_attempts_raise_rate_limited(sandbox_asgi, tmp_path):
    raised, _client = await raised_after_attempts(
        sandbox_asgi(retry_after=1), tmp_path, RateLimited, GoToClient.groups, burst_429=10
    )
    assert raised.status == 429
    assert raised.path == "/groups"


async def test_server_errors_are_retried_then_reported_with_method_path_and_status(
    sandbox_asgi, tmp_path
):
    raised, client = await raised_after_attempts(
        sandbox_asgi(),
        tmp_path,
        ApiError,
        lambda client: client.delete_session(1, 2),
        delete_status=503,
    )
    assert raised.method == "DELETE"
    assert raised.status == 503
    assert client.stats.retries == 2


async def test_delete_returns_on_success_and_raises_not_found_when_absent(sandbox_asgi, tmp_path):
    sandbox = sandbox_asgi()
    session = next(s for s in sandbox.account.iter_sessions() if s.recording is not None)
    async with make_client(sandbox.transport, tmp_path / "t.json") as client:
        await client.delete_recordings(session.organizer_key, session.session_id)
        await client.delete_session(session.organizer_key, session.session_id)
        with pytest.raises(NotFound):
            await client.delete_session(session.organizer_key, session.session_id)
    assert session.session_id not in sandbox.account.sessions


async def test_a_hanging_call_ends_at_its_deadline(sandbox_asgi, tmp_path):
    sandbox = sandbox_asgi()
    async with make_client(sandbox.transport, tmp_path / "t.json", call_deadline=0.3) as client:
        await client.groups()
        sandbox.app.state.controls.released.clear()
        with pytest.raises(ApiError) as raised:
            await client.groups()
        sandbox.app.state.controls.released.set()
    assert raised.value.status is None
    assert "deadline" in str(raised.value)


async def test_reprs_show_no_secret(sandbox_asgi, tmp_path):
    sandbox = sandbox_asgi()
    async with make_client(sandbox.transport, tmp_path / "t.json") as client:
        await client.groups()
        stored = client.auth.store.load()
    assert stored is not None
    for text in (repr(client), repr(client.auth), repr(client.auth.store), repr(stored)):
        assert "sandbox-secret" not in text
        assert stored.refresh_token not in text


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
