"""A GoTo client on the in-process sandbox (ASGI) whose retries and pauses take no real time."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.tokenstore import TokenStore


class Instant:
    """Injected clock and sleep for the client: retries and pauses take no real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def client_for(app: Any, tmp_path: Path, **options: Any) -> GoToClient:
    """A client of the sandbox app `app`, its token stored in `tmp_path`; `options` go to the
    client (clock and sleep default to an `Instant`)."""
    transport = httpx.ASGITransport(app=app)
    auth = TokenManager(
        "http://sandbox/oauth/token",
        "sandbox-client",
        SecretStr("sandbox-secret"),
        TokenStore(tmp_path / "token.json"),
        SecretStr("sandbox-refresh"),
        transport=transport,
    )
    instant = Instant()
    options = {"clock": instant.clock, "sleep": instant.sleep, **options}
    return GoToClient("http://sandbox/G2M/rest", auth, 10_000, **options)
