"""The daemon alerts through the same run session: a refusal repeated by every scheduled run
goes out once within the repeat window.

In-process on the sandbox: the daemon started as `serve` starts it (tests/indaemon.py), its
`@every 1s` schedule fired on the test's clock; alerts go to a real receiver on loopback.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from indaemon import START, Clock, daemon, fires, started
from routes import Folder, World
from structlog.testing import capture_logs

pytestmark = pytest.mark.anyio


async def test_a_refusal_every_scheduled_run_repeats_alerts_once(
    tmp_path: Path, receiver: Any
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    clock = Clock()
    made = daemon(
        world,
        clock,
        default_schedule="@every 1s",
        notify=receiver.url,
        max_deletions_per_run=1,
    )
    (spec,) = (schedule.spec for schedule in made.schedules)
    with capture_logs() as logs:
        async with started(made) as up:
            assert up
            for moment, _schedule in fires(made.schedules, START, START + timedelta(seconds=3)):
                clock.now = moment
                await made.run_due(spec)
            assert receiver.titles() == ["goto-retention: run refused (global_cap)"]
            # Once RETENTION_NOTIFY_REPEAT (24h) has passed, the refusal goes out again.
            clock.now = START + timedelta(hours=24, seconds=1)
            await made.run_due(spec)

    refused = [event for event in logs if event["event"] == "scheduled run did not complete"]
    assert len(refused) == 4
    assert {event["reason"] for event in refused} == {"global_cap"}
    assert world.spy.deleted == []
    assert receiver.titles() == [
        "goto-retention: run refused (global_cap)",
        "goto-retention: run refused (global_cap) (still, alert 2)",
    ]
