"""Limits and faults in front of the API: latency, hang, rate limit, 429 bursts, errors, drops."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any

from retention.sandbox.times import http_date

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/G2M/rest"
RETRY_AFTER_MODES = ("auto", "date", "absent")
FAULT_STATUSES = (500, 502, 503)


@dataclass
class SandboxOptions:
    """How a sandbox behaves; the clock and sleep are injectable for tests.

    `retry_after` is "auto" (seconds until the window frees), an integer number of seconds,
    "date" (an HTTP-date), or "absent". `rate_limit` is requests per second per client.
    `date_offset` is how many seconds the `Date` header runs ahead of `clock` (negative:
    behind); it follows the clock, never the account's fixed `now`, which dates the data only.
    """

    token_ttl: int = 3600
    rotate_refresh_tokens: bool = True
    rate_limit: float | None = None
    retry_after: str | int = "auto"
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    date_offset: float = 0.0
    seed: int = 1
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


@dataclass
class Controls:
    """The knobs `POST /_sandbox/control` turns while the sandbox runs."""

    fault_rate: float
    latency_ms: float
    rate_limit: float | None
    retry_after: str | int
    token_ttl: int
    burst_429: int = 0
    delete_status: int | None = None
    date_offset: float = 0.0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_options(cls, options: SandboxOptions) -> Controls:
        controls = cls(
            options.fault_rate,
            options.latency_ms,
            options.rate_limit,
            options.retry_after,
            options.token_ttl,
            date_offset=options.date_offset,
        )
        controls.released.set()
        return controls

    @property
    def hang(self) -> bool:
        return not self.released.is_set()

    def view(self) -> dict[str, Any]:
        """The current values, as `POST /_sandbox/control` accepts them (`released` as `hang`)."""
        knobs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "released"}
        return {**knobs, "hang": self.hang}


class RequestLog:
    """Every request received, in order, with the status it was answered."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def since(self, index: int) -> list[dict[str, Any]]:
        return self.entries[index:]


class ConnectionDropped(Exception):
    """Raised after the response head to make the server cut the connection mid-response."""


async def _json(send: Send, status: int, body: dict[str, Any], headers: list[Any]) -> None:
    payload = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + headers})
    await send({"type": "http.response.body", "body": payload})


class Gate:
    """ASGI middleware: logs every request, then applies the controls to API requests."""

    def __init__(self, app: ASGIApp, controls: Controls, log: RequestLog, options: SandboxOptions):
        self.app = app
        self.controls = controls
        self.log = log
        self.clock = options.clock
        self.sleep = options.sleep
        self.rng = random.Random(options.seed)  # noqa: S311 - reproducible faults, not security
        self.windows: dict[str, deque[float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("unknown", 0)
        entry: dict[str, Any] = {
            "t": self.clock(),
            "method": scope["method"],
            "path": path,
            "query": scope.get("query_string", b"").decode("latin-1"),
            "client": f"{client[0]}:{client[1]}",
            "status": None,
        }
        self.log.entries.append(entry)

        async def logged_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                stamp = http_date(self.clock() + self.controls.date_offset).encode()
                message = {**message, "headers": [*message.get("headers", ()), (b"date", stamp)]}
            await send(message)

        # Counted on arrival, as a gateway does, not after the added latency: a sleep that
        # wakes late under load would otherwise bunch requests the client had spaced out.
        api = path.startswith(API_PREFIX)
        limit = self.controls.rate_limit
        over_limit = self._admit(client[0], limit) if api and limit is not None else None
        if self.controls.latency_ms > 0:
            await self.sleep(self.controls.latency_ms / 1000)
        if api and await self._intercept(entry, over_limit, logged_send):
            return
        await self.app(scope, receive, logged_send)

    async def _intercept(self, entry: dict[str, Any], over_limit: float | None, send: Send) -> bool:
        """Answer the request here (hang, 429, fault) and return True, or let it through."""
        await self.controls.released.wait()
        controls = self.controls
        if controls.burst_429 > 0:
            controls.burst_429 -= 1
            await self._too_many(send, 1.0)
            return True
        if over_limit is not None:
            await self._too_many(send, over_limit)
            return True
        if controls.fault_rate > 0 and self.rng.random() < controls.fault_rate:
            fault = self.rng.choice((*FAULT_STATUSES, 0))
            if fault == 0:
                entry["fault"] = "dropped"
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", b"4096"),
                        ],
                    }
                )
                raise ConnectionDropped("sandbox fault: connection dropped mid-response")
            entry["fault"] = str(fault)
            body = {"int_err_code": "InternalError", "msg": f"sandbox fault {fault}"}
            await _json(send, fault, body, [])
            return True
        return False

    def _admit(self, client: str, per_second: float) -> float | None:
        """Count the request in its client's 1-second window; seconds to wait when full."""
        now = self.clock()
        window = self.windows.setdefault(client, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) >= per_second:
            return window[0] + 1.0 - now
        window.append(now)
        return None

    async def _too_many(self, send: Send, wait: float) -> None:
        mode = self.controls.retry_after
        headers: list[tuple[bytes, bytes]] = []
        if isinstance(mode, int):
            headers.append((b"retry-after", str(mode).encode()))
        elif mode == "auto":
            headers.append((b"retry-after", str(max(1, math.ceil(wait))).encode()))
        elif mode == "date":
            # in the server's own time, as its Date header: a skewed server skews both
            stamp = http_date(self.clock() + self.controls.date_offset + max(1.0, wait))
            headers.append((b"retry-after", stamp.encode()))
        body = {"int_err_code": "TooManyRequests", "msg": "Rate limit exceeded"}
        await _json(send, 429, body, headers)
