"""A restarted daemon reports the last run from the record: its own, or one the CLI made.

In-process: the daemon started and stopped as `serve` does it (tests/indaemon.py), on the sandbox
over ASGI; `/healthz` and `/metrics` read from its own app, READY from a socket in this process.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from indaemon import Clock, Notifications, daemon, scrape, started
from routes import Folder, World
from structlog.testing import capture_logs

from retention.audit import AuditLog
from retention.service import pipeline
from retention.service.context import RunContext
from retention.service.notify import Notifier
from retention.service.runmetrics import RecordedRun, last_recorded_run
from retention.service.schedule import when
from retention.settings import Settings

pytestmark = pytest.mark.anyio


def _recorded_run(world: World) -> tuple[datetime, str, int]:
    """When the record's last run ended, its result as health reports it, and how many runs
    the record holds."""
    with closing(sqlite3.connect(world.state_dir / "audit.db")) as conn:
        moment, result = conn.execute(
            "SELECT time, json_extract(data, '$.result') FROM events"
            " WHERE event = 'run_finished' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        (runs,) = conn.execute(
            "SELECT count(*) FROM events WHERE event = 'run_finished'"
        ).fetchone()
    # A run that SIGTERM halted is reported failed.
    return datetime.fromisoformat(moment), {"ok": "ok", "halted": "failed"}[result], runs


async def test_a_restarted_daemon_reports_the_previous_run_from_healthz_metrics_and_status(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    clock = Clock()
    first = daemon(world, clock)
    with capture_logs() as logs:
        async with started(first):
            await first.run_due(first.schedules[0].spec)
    [summary] = [e for e in logs if e["event"] == "run finished"]
    assert summary["result"] == "ok"
    assert world.removed()
    finished, state, runs = _recorded_run(world)

    clock.now += timedelta(minutes=5)
    notifications = Notifications()
    second = daemon(world, clock, Notifier(notifications.address))
    try:
        with capture_logs() as logs:
            async with started(second):
                [ready] = [m for m in notifications.read() if m.get("READY") == "1"]
                assert ready["STATUS"].startswith(f"last run {state} at {when(finished)}; "), ready[
                    "STATUS"
                ]
                served = await scrape(second)
    finally:
        notifications.close()
    health = served.health
    assert health["last_run"]["result"] == state
    assert datetime.fromisoformat(health["last_run"]["at"]) == finished
    states, timestamp = served.last_run()
    assert states[state] == 1.0
    assert states["never"] == 0.0
    assert timestamp == finished.timestamp()
    ran = [e for e in logs if e["event"] == "run finished"]
    assert ran == [], "no run since the restart: what it reports is the earlier run"
    assert _recorded_run(world) == (finished, state, runs)


async def test_a_run_the_cli_made_is_the_last_run_a_starting_daemon_reports(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    clock = Clock()
    before = clock()
    # What `retention run --yes` runs (retention/cli/plan.py), on the world's account.
    ctx = RunContext(world.settings(), clock=clock, transport=world.spy)
    done = await pipeline.run(ctx, trigger="run", confirm=None, approved_by="ops (--yes)")
    assert done.result == "ok"
    assert world.removed()
    finished, _state, _runs = _recorded_run(world)
    assert finished >= before

    clock.now += timedelta(minutes=5)
    made = daemon(world, clock)
    async with started(made):
        served = await scrape(made)
    health = served.health
    assert health["last_run"]["result"] == "ok"
    assert datetime.fromisoformat(health["last_run"]["at"]) == finished
    states, timestamp = served.last_run()
    assert states["ok"] == 1.0
    assert timestamp == finished.timestamp()


async def test_a_daemon_on_a_new_state_directory_reports_no_run_yet(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    made = daemon(world, Clock())
    async with started(made):
        served = await scrape(made)
    assert served.health["last_run"] == {
        "result": "never",
        "at": None,
        "error": None,
        "reason": None,
    }
    states, timestamp = served.last_run()
    assert states["never"] == 1.0
    assert timestamp == 0.0


def _settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", policy_dir=tmp_path)


def _clock() -> Callable[[], datetime]:
    moments = iter(datetime(2026, 11, 23, 3, 0, second, tzinfo=UTC) for second in range(60))
    return lambda: next(moments)


def test_the_record_gives_a_refused_runs_reason_and_message_and_a_halted_run_is_failed(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path)
    with AuditLog.open(settings.audit_db, subject_mode="hash", clock=_clock()) as log:
        log.run_started(run_id="run-1", trigger="daemon", settings_summary={})
        log.run_finished(run_id="run-1", counts={}, result="halted")
        log.run_started(run_id="run-2", trigger="run", settings_summary={})
        log.refused(
            run_id="run-2",
            reason="clock_skew",
            details={"check": "account_and_clock", "message": "the host clock is off"},
        )
        log.run_finished(run_id="run-2", counts={}, result="refused")
    recorded = last_recorded_run(settings)
    assert recorded == RecordedRun(
        result="refused",
        finished_at=datetime(2026, 11, 23, 3, 0, 4, tzinfo=UTC),
        duration_seconds=2.0,
        reason="clock_skew",
        error="the host clock is off",
    )
    with AuditLog.open(
        settings.audit_db, subject_mode="hash", clock=lambda: datetime(2026, 11, 24, tzinfo=UTC)
    ) as log:
        log.run_started(run_id="run-3", trigger="daemon", settings_summary={})
        log.run_finished(run_id="run-3", counts={}, result="halted")
    halted = last_recorded_run(settings)
    assert halted is not None
    assert (halted.result, halted.reason, halted.error) == ("failed", None, None)


def test_no_record_or_one_that_cannot_be_read_is_no_last_run(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert last_recorded_run(settings) is None
    settings.audit_db.parent.mkdir(parents=True)
    settings.audit_db.write_bytes(b"not a database at all" * 100)
    assert last_recorded_run(settings) is None
