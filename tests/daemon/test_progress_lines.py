"""Off a terminal (the journal, a pipe), the daemon's scheduled runs log their progress."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from routes import Folder, World
from structlog.testing import capture_logs

from retention.service.daemon import Daemon
from retention.service.notify import Notifier

pytestmark = pytest.mark.anyio


class Elapsing(httpx.AsyncBaseTransport):
    """The account's transport, and a monotonic clock that moves `step` seconds each time the
    API answers (time passes as the work goes; nothing sleeps)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, step: float) -> None:
        self.inner, self.step, self.now = inner, step, 0.0

    def clock(self) -> float:
        return self.now

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.now += self.step
        return response


async def scheduled_run_logs(world: World, step: float) -> list[dict[str, Any]]:
    elapsing = Elapsing(world.spy, step)
    made = Daemon(
        world.settings(), Notifier(None), transport=elapsing, progress_clock=elapsing.clock
    )
    made.load()
    with capture_logs() as logs:
        await made.run_due(made.schedules[0].spec)
    return [line for line in logs if line["event"] == "progress"]


async def test_a_scheduled_run_off_a_terminal_logs_its_scan_and_removals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    world = World.make(tmp_path)
    world.write(Folder())
    lines = await scheduled_run_logs(world, 31.0)
    scan = [line for line in lines if line["task"] == "scan"]
    removals = [line for line in lines if line["task"] == "removals"]
    assert scan
    assert scan[-1]["unit"] == "windows"
    assert scan[-1]["done"] == scan[-1]["total"] > 0
    assert world.removed()
    # Removals answered together report together: a line at most once per interval.
    assert removals
    assert removals[-1]["unit"] == "removals"
    assert 0 < removals[-1]["done"] <= removals[-1]["total"] == len(world.removed())
    assert all({"rate_per_s", "eta_s", "elapsed_s"} <= set(line) for line in lines)


async def test_a_scheduled_run_logs_no_line_before_the_interval_has_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    world = World.make(tmp_path)
    world.write(Folder())
    assert await scheduled_run_logs(world, 0.0) == []
    assert world.removed()
