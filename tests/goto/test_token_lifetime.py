"""Every number from the token endpoint is bounded: an absurd or non-finite `expires_in` is used
as the documented lifetime or clamped to the bounds, never a traceback (no OverflowError)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from retention.goto.auth import (
    MAX_TOKEN_LIFETIME,
    MIN_TOKEN_LIFETIME,
    TOKEN_LIFETIME,
    TokenManager,
)
from retention.goto.tokenstore import TokenStore

pytestmark = pytest.mark.anyio

TOKEN_URL = "https://auth.example.com/oauth/token"
NOW = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def manager(tmp_path: Path, expires_in: str, clock: Clock) -> tuple[TokenManager, list[int]]:
    """A manager whose token endpoint answers `expires_in` as written (raw JSON text)."""
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        body = (
            f'{{"access_token": "access-{len(calls)}", "refresh_token": "refresh-{len(calls)}",'
            f' "account_key": "7000001", "expires_in": {expires_in}}}'
        )
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    auth = TokenManager(
        TOKEN_URL,
        "client-id",
        SecretStr("client-secret"),
        TokenStore(tmp_path / "token.json"),
        SecretStr("refresh-0"),
        transport=httpx.MockTransport(answer),
        clock=clock,
        wall_clock=lambda: NOW,
    )
    return auth, calls


@pytest.mark.parametrize(
    ("expires_in", "used"),
    [
        ("1e300", MAX_TOKEN_LIFETIME),
        ("Infinity", MAX_TOKEN_LIFETIME),
        ("1" + "0" * 400, MAX_TOKEN_LIFETIME),
        ("-Infinity", MIN_TOKEN_LIFETIME),
        ("-5", MIN_TOKEN_LIFETIME),
        ("0", MIN_TOKEN_LIFETIME),
        ("0.001", MIN_TOKEN_LIFETIME),
        ("NaN", TOKEN_LIFETIME),
        ('"soon"', TOKEN_LIFETIME),
        ("true", TOKEN_LIFETIME),
        ("null", TOKEN_LIFETIME),
        ("[3600]", TOKEN_LIFETIME),
        ("1800", 1800.0),
    ],
)
async def test_an_absurd_expires_in_is_bounded_and_the_token_kept_for_that_long(
    tmp_path: Path, expires_in: str, used: float
) -> None:
    clock = Clock()
    auth, calls = manager(tmp_path, expires_in, clock)
    try:
        token = await auth.access_token()
        kept = auth.store.load_access()
        assert kept is not None
        assert (kept.expires_at - kept.obtained_at).total_seconds() == used
        # Used until shortly before the bounded lifetime ends, then refreshed.
        clock.now += used - min(60.0, used / 4) - 1
        assert await auth.access_token() == token
        clock.now += 2
        assert await auth.access_token() != token
        assert len(calls) == 2
    finally:
        await auth.aclose()
