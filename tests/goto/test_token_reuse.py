"""The access token is kept between runs: refreshed when it expires or is refused, not each run."""

from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from support import deploy

from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.tokenstore import ACCESS_FILE, TokenStore
from retention.sandbox.policies import policy_set, rule

NOTHING_DUE = policy_set(rule("recordings", 3650))
TOKEN_URL = "http://sandbox/oauth/token"


def token_posts(server: Any, since: int = 0) -> int:
    return sum(1 for r in server.requests(since) if r["path"] == "/oauth/token")


def test_consecutive_runs_with_a_long_lived_token_make_one_token_request(
    sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    server = sandbox("--token-ttl", "3600")
    dep = deploy(server, tmp_path, NOTHING_DUE)
    outputs = []
    for _ in range(4):
        done = dep.cli("run", "--yes", check=True)
        outputs.append(done.stdout + done.stderr)
    assert token_posts(server) == 1
    kept = dep.state_dir / ACCESS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    token = TokenStore.in_state_dir(dep.state_dir).load_access()
    assert token is not None
    assert all(token.access_token not in output for output in outputs)
    assert token.access_token not in repr(token)


def test_a_kept_token_the_api_refuses_is_refreshed_once_and_the_new_one_kept(
    sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    server = sandbox("--token-ttl", "3600")
    dep = deploy(server, tmp_path, NOTHING_DUE)
    dep.cli("run", "--yes", check=True)
    assert token_posts(server) == 1
    server.control(revoke_tokens=True)
    mark = len(server.requests())
    dep.cli("run", "--yes", check=True)
    # The sandbox answers a dead token as GoTo does: 403 InvalidToken (or a 401).
    refused = [r for r in server.requests(mark) if r["status"] in (401, 403)]
    assert len(refused) == 1, "one call learns the kept token is dead"
    assert token_posts(server, mark) == 1
    mark = len(server.requests())
    dep.cli("run", "--yes", check=True)
    assert token_posts(server, mark) == 0
    assert [r for r in server.requests(mark) if r["status"] in (401, 403)] == []


def test_a_run_with_a_kept_token_still_checks_the_clock_against_the_apis_date(
    sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    server = sandbox("--token-ttl", "3600")
    dep = deploy(server, tmp_path, NOTHING_DUE)
    dep.cli("run", "--yes", check=True)
    server.control(date_offset=3600)
    mark = len(server.requests())
    refused = dep.cli("run", "--yes")
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "host clock" in refused.stderr
    assert token_posts(server, mark) == 0, "the API's own answer gave the Date"


def test_auth_status_check_asks_the_token_endpoint_even_with_a_token_kept(
    sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    server = sandbox("--token-ttl", "3600")
    dep = deploy(server, tmp_path, NOTHING_DUE)
    dep.cli("run", "--yes", check=True)
    mark = len(server.requests())
    checked = dep.cli("auth", "status", "--check", check=True)
    assert "token endpoint: accepted" in checked.stdout
    assert token_posts(server, mark) == 1


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _client(transport: Any, store: TokenStore, wall: WallClock, refresh: str) -> GoToClient:
    auth = TokenManager(
        TOKEN_URL,
        "sandbox-client",
        SecretStr("sandbox-secret"),
        store,
        SecretStr(refresh),
        transport=transport,
        wall_clock=wall,
    )
    return GoToClient("http://sandbox/G2M/rest", auth, 1000.0)


def _token_requests(app: Any) -> int:
    return sum(1 for entry in app.state.log.since(0) if entry["path"] == "/oauth/token")


@pytest.mark.anyio
async def test_a_kept_token_is_used_until_the_margin_before_its_expiry_then_refreshed(
    sandbox_asgi: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = sandbox_asgi(token_ttl=3600)
    store = TokenStore(tmp_path / "refresh_token.json")
    wall = WallClock()
    steps = [
        (timedelta(0), 1),  # nothing kept: one refresh
        (timedelta(minutes=30), 1),  # half its life left: reused
        (timedelta(minutes=58, seconds=50), 1),  # 70 s left: reused
        (timedelta(minutes=59, seconds=30), 2),  # within a minute of expiry: refreshed
        (timedelta(hours=1, minutes=30), 2),  # the new one is reused
        (timedelta(hours=5), 3),  # long expired: refreshed
    ]
    start = wall.now
    for offset, expected in steps:
        wall.now = start + offset
        async with _client(sandbox.transport, store, wall, "sandbox-refresh") as client:
            organizers = await client.organizers()
            assert organizers.items
        assert _token_requests(sandbox.app) == expected, offset


@pytest.mark.anyio
async def test_a_token_kept_for_another_client_is_not_used(
    sandbox_asgi: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = sandbox_asgi(token_ttl=3600)
    store = TokenStore(tmp_path / "refresh_token.json")
    wall = WallClock()
    async with _client(sandbox.transport, store, wall, "sandbox-refresh") as client:
        await client.organizers()
    kept = store.load_access()
    assert kept is not None
    other = TokenManager(
        "http://elsewhere/oauth/token",
        "sandbox-client",
        SecretStr("sandbox-secret"),
        store,
        transport=sandbox.transport,
        wall_clock=wall,
    )
    try:
        # The transport reaches the same sandbox whatever the host: it asks, as it must.
        token = await other.access_token()
    finally:
        await other.aclose()
    assert token != kept.access_token
    assert _token_requests(sandbox.app) == 2
