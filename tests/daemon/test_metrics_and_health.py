"""What the daemon's scheduled runs did shows in `/metrics`, `/healthz` and its status line.

In-process on the sandbox: the daemon started as `serve` starts it (tests/indaemon.py), its
schedule fired twice on the test's clock, `/metrics` and `/healthz` read from its own app and
the status from a socket in this process. That the daemon serves them on its socket, READY,
the watchdog and the stop are tests/daemon/test_daemon.py's (a real process).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from indaemon import Clock, Notifications, cli, daemon, fires, scrape, started
from routes import Folder, World
from structlog.testing import capture_logs

from retention.service.notify import Notifier

pytestmark = pytest.mark.anyio


async def test_scheduled_runs_show_in_metrics_health_and_status(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    folder = Folder()
    world.write(folder)
    # The refresh token's time is the host's (tokens live in real time): the run's clock starts
    # there, and its hourly schedule fires twice, each time ahead of anything the host stamps.
    begin = datetime.now(UTC)
    clock = Clock(begin)
    notifications = Notifications()
    made = daemon(world, clock, Notifier(notifications.address), default_schedule="@every 1h")
    (spec,) = (schedule.spec for schedule in made.schedules)
    try:
        with capture_logs() as logs:
            async with started(made):
                for moment, _schedule in fires(made.schedules, begin, begin + timedelta(hours=2)):
                    clock.now = moment
                    await made.run_due(spec)
                served = await scrape(made)
        statuses = [m["STATUS"] for m in notifications.read() if "STATUS" in m]
    finally:
        notifications.close()

    summary, again = (e for e in logs if e["event"] == "run finished")
    assert summary["result"] == "ok"
    assert summary["counts"]["deleted"] > 0
    deletes = world.spy.deleted
    assert len(deletes) == summary["counts"]["deleted"]
    assert {action for _session, action in deletes} == {"delete_recordings"}
    assert again["result"] == "ok"
    assert again["counts"].get("deleted", 0) == 0, "a second run: nothing left to remove"

    assert served.metrics_status == 200
    found = served.samples()
    removals = {
        (labels["action"], labels["outcome"], labels["policy"]): value
        for labels, value in found["retention_removals_total"]
    }
    assert removals == {("delete_recordings", "deleted", folder.rule_name): len(deletes)}
    answered_204 = sum(
        v for labels, v in found["retention_api_requests_total"] if labels["status"] == "204"
    )
    assert answered_204 == len(deletes)
    assert found["retention_pending_intents"] == [({}, 0.0)]
    last, _timestamp = served.last_run()
    assert last["ok"] == 1.0
    assert sum(v for _labels, v in found["retention_scan_sessions_total"]) > 0
    ((_labels, token_age),) = found["retention_refresh_token_age_seconds"]
    assert math.isfinite(token_age), "the sandbox rotates refresh tokens: the age is known"
    assert token_age >= 0
    assert served.health_status == 200
    assert served.health["status"] == "ok"

    assert any(s.startswith("last run ok at ") for s in statuses), statuses
    verify = cli(world, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
