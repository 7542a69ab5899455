"""The access token is kept between runs: refreshed when it expires or is refused, not each run."""

from __future__ import annotations

import stat
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from support import Deployment, deploy

from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.tokenstore import ACCESS_FILE, TokenStore
from retention.sandbox.policies import policy_set, rule

NOTHING_DUE = policy_set(rule("recordings", 3650))
TOKEN_URL = "http://sandbox/oauth/token"


def token_posts(server: Any, since: int = 0) -> int:
    return sum(1 for r in server.requests(since) if r["path"] == "/oauth/token")


@pytest.fixture
def dep(sandbox: Callable[..., Any], tmp_path: Path) -> Deployment:
    """The service against a sandbox whose access tokens live an hour; nothing is due."""
    return deploy(
        sandbox("--token-ttl", "3600", "--days", "20", "--sessions-per-day", "4"),
        tmp_path,
        NOTHING_DUE,
    )


def test_consecutive_runs_with_a_long_lived_token_make_one_token_request(dep: Deployment) -> None:
    outputs = []
    for _ in range(4):
        done = dep.cli("run", "--yes", check=True)
        outputs.append(done.stdout + done.stderr)
    assert token_posts(dep.server) == 1
    kept = dep.state_dir / ACCESS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    token = TokenStore.in_state_dir(dep.state_dir).load_access()
    assert token is not None
    assert all(token.access_token not in output for output in outputs)
    assert token.access_token not in repr(token)


def test_a_kept_token_the_api_refuses_is_refreshed_once_and_the_new_one_kept(
    dep: Deployment,
) -> None:
    dep.cli("run", "--yes", check=True)
    assert token_posts(dep.server) == 1
    dep.server.control(revoke_tokens=True)
    mark = len(dep.requests())
    dep.cli("run", "--yes", check=True)
    # The sandbox answers a dead token as GoTo does: 403 InvalidToken (or a 401).
    refused = [r for r in dep.requests(mark) if r["status"] in (401, 403)]
    assert len(refused) == 1, "one call learns the kept token is dead"
    assert token_posts(dep.server, mark) == 1
    mark = len(dep.requests())
    dep.cli("run", "--yes", check=True)
    assert token_posts(dep.server, mark) == 0
    assert [r for r in dep.requests(mark) if r["status"] in (401, 403)] == []


def test_a_run_with_a_kept_token_still_checks_the_clock_against_the_apis_date(
    dep: Deployment,
) -> None:
    dep.cli("run", "--yes", check=True)
    dep.server.control(date_offset=3600)
    mark = len(dep.requests())
    refused = dep.cli("run", "--yes")
    assert refused.returncode == 3, refused.stderr[-2000:]
    assert "host clock" in refused.stderr
    assert token_posts(dep.server, mark) == 0, "the API's own answer gave the Date"


def test_auth_status_check_asks_the_token_endpoint_even_with_a_token_kept(
    dep: Deployment,
) -> None:
    dep.cli("run", "--yes", check=True)
    mark = len(dep.requests())
    checked = dep.cli("auth", "status", "--check", check=True)
    assert "token endpoint: accepted" in checked.stdout
    assert token_posts(dep.server, mark) == 1


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class KeptTokens:
    """An in-process sandbox whose tokens live an hour, a token store and a settable wall clock."""

    sandbox: Any
    store: TokenStore
    wall: WallClock

    def manager(self, token_url: str = TOKEN_URL, refresh: str | None = None) -> TokenManager:
        """Tokens from `token_url` for the sandbox's client, kept in the store."""
        return TokenManager(
            token_url,
            "sandbox-client",
            SecretStr("sandbox-secret"),
            self.store,
            None if refresh is None else SecretStr(refresh),
            transport=self.sandbox.transport,
            wall_clock=self.wall,
        )

    def client(self) -> GoToClient:
        return GoToClient(
            "http://sandbox/G2M/rest", self.manager(refresh="sandbox-refresh"), 1000.0
        )

    def token_requests(self) -> int:
        log = self.sandbox.app.state.log.since(0)
        return sum(1 for entry in log if entry["path"] == "/oauth/token")


@pytest.fixture
def tokens(sandbox_asgi: Callable[..., Any], tmp_path: Path) -> KeptTokens:
    return KeptTokens(
        sandbox_asgi(token_ttl=3600), TokenStore(tmp_path / "refresh_token.json"), WallClock()
    )


@pytest.mark.anyio
async def test_a_kept_token_is_used_until_the_margin_before_its_expiry_then_refreshed(
    tokens: KeptTokens,
) -> None:
    steps = [
        (timedelta(0), 1),  # nothing kept: one refresh
        (timedelta(minutes=30), 1),  # half its life left: reused
        (timedelta(minutes=58, seconds=50), 1),  # 70 s left: reused
        (timedelta(minutes=59, seconds=30), 2),  # within a minute of expiry: refreshed
        (timedelta(hours=1, minutes=30), 2),  # the new one is reused
        (timedelta(hours=5), 3),  # long expired: refreshed
    ]
    start = tokens.wall.now
    for offset, expected in steps:
        tokens.wall.now = start + offset
        async with tokens.client() as client:
            organizers = await client.organizers()
            assert organizers.items
        assert tokens.token_requests() == expected, offset


@pytest.mark.anyio
async def test_a_token_kept_for_another_client_is_not_used(tokens: KeptTokens) -> None:
    async with tokens.client() as client:
        await client.organizers()
    kept = tokens.store.load_access()
    assert kept is not None
    other = tokens.manager("http://elsewhere/oauth/token")
    try:
        # The transport reaches the same sandbox whatever the host: it asks, as it must.
        token = await other.access_token()
    finally:
        await other.aclose()
    assert token != kept.access_token
    assert tokens.token_requests() == 2
