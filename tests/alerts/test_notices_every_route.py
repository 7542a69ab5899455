"""Owner notices go out on every route that writes a run, in-process on the sandbox.

`plan` sends nothing; `apply` and the daemon in both modes send the notices due before they
decide, so a `notice: required` removal is reachable from every route. A removal waiting on a
notice that cannot go out keeps the run `ok` and makes the daemon unhealthy (`notice_unsent`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from routes import Folder, World

from retention.engine.planfile import load_plan_file
from retention.engine.state import noticed_keys, open_state_db
from retention.service import pipeline
from retention.service.context import RunContext
from retention.service.daemon import Daemon
from retention.service.notify import Notifier
from retention.service.preview import preview

pytestmark = pytest.mark.anyio
NOTICED = Folder(notice=True)


def noticed(world: World) -> int:
    db = open_state_db(world.state_dir / "state.db")
    try:
        return len(noticed_keys(db))
    finally:
        db.close()


async def test_plan_sends_nothing_and_apply_sends_the_notices_before_deciding(
    tmp_path: Path, smtp: tuple[Any, str]
) -> None:
    box, url = smtp
    world = World.make(tmp_path)
    world.write(NOTICED)
    ctx = RunContext(world.settings(smtp_url=url), transport=world.spy)
    plan = await preview(ctx, as_of=None, selected=None, record=True)
    assert plan.items == []
    assert {entry["by"] for entry in plan.blocked} == {"notice"}
    assert box.messages == [], "plan sends nothing"

    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.document()))
    await pipeline.apply(ctx, load_plan_file(path), confirm=None, approved_by="test")

    assert box.messages, "apply sent the notices due"
    assert noticed(world) == len(plan.blocked)
    assert world.spy.deleted == [], "told today: nothing goes before the notice period"


async def test_the_review_mode_daemon_sends_the_notices_due(
    tmp_path: Path, smtp: tuple[Any, str]
) -> None:
    box, url = smtp
    world = World.make(tmp_path)
    world.write(NOTICED)
    settings = world.settings(smtp_url=url, daemon_mode="review")
    made = Daemon(settings, Notifier(None), transport=world.spy)
    made.load()

    await made.run_due(made.schedules[0].spec)

    assert made.health.last_run_result == "ok"
    assert box.messages
    assert noticed(world) > 0


async def test_removals_waiting_on_a_notice_that_cannot_go_out_make_the_daemon_unhealthy(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(NOTICED)
    made = Daemon(world.settings(), Notifier(None), transport=world.spy)  # no SMTP settings
    made.load()

    await made.run_due(made.schedules[0].spec)

    assert made.health.last_run_result == "ok", "the run itself is ok"
    assert made.health.notice_unsent > 0
    problems = made.health.report()["problems"]
    assert any(problem.startswith("notice_unsent") for problem in problems), problems

    world.write(Folder())  # the policy no longer asks for notice: nothing waits on one
    await made.run_due(made.schedules[0].spec)
    assert made.health.notice_unsent == 0
