"""`retention status`: read while a run holds the lock, exit 0 on time, 1 when attention is due."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from routes import Folder, World, invoke

from retention.errors import Refused
from retention.service import pipeline
from retention.service.context import RunContext
from retention.service.lock import acquire

pytestmark = pytest.mark.anyio


async def run(world: World) -> None:
    ctx = RunContext(world.settings(), transport=world.spy)
    await pipeline.run(ctx, trigger="test", confirm=None, approved_by="test")


async def test_status_reads_while_a_run_holds_the_lock_and_exits_0_when_on_time(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder(period_days=5))
    await run(world)

    with acquire(world.state_dir, command="retention run"):
        done = invoke(world, "status", "--format", "json")
    assert done.exit_code == 0, done.output
    status = json.loads(done.output)
    assert status["last_run"]["result"] == "ok"
    (policy,) = status["policies"]
    assert policy == {**policy, "policy": "recordings-5d", "overdue": 0, "past_limit": False}
    assert status["record"]["rows"] > 0
    assert status["proposals"] == []
    table = invoke(world, "status")
    assert table.exit_code == 0
    assert "recordings-5d" in table.output


async def test_status_exits_1_after_a_refused_run_and_2_for_bad_input(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    world.write(Folder(period_days=5, cap=1))
    with pytest.raises(Refused):
        await run(world)

    done = invoke(world, "status", "--format", "json")
    assert done.exit_code == 1, done.output
    status = json.loads(done.output)
    assert status["last_run"]["result"] == "refused"
    assert status["last_run"]["reason"] == "cap"
    assert status["policies"][0]["overdue"] == 0, "first loaded by that run: not due before it"
    assert invoke(world, "status", "--format", "xml").exit_code == 2
