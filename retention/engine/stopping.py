"""Calls that a stop cuts short: after SIGTERM or the run's deadline, a grace, then cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class GraceExpired(Exception):
    """A stop came and the call did not end within its grace; it was cancelled."""


async def within_grace(call: Awaitable[T], stop: asyncio.Event, grace: float) -> T:
    """The call's result; once `stop` is set it has `grace` seconds more to end.

    Raises GraceExpired when it does not (the call is cancelled first); a grace of 0 abandons
    it as soon as the stop comes.
    """
    running: asyncio.Future[T] = asyncio.ensure_future(call)
    stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
    racing: set[asyncio.Future[Any]] = {running, stopping}
    try:
        await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        if not running.done() and grace > 0:
            await asyncio.wait({running}, timeout=grace)
    finally:
        stopping.cancel()
    if not running.done():
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        raise GraceExpired
    return running.result()
