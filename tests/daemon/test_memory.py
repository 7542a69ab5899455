"""A restarted daemon reports the last run from the record: its own, or one the CLI made."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from retention.audit import AuditLog
from retention.sandbox.policies import RECORDINGS_30D as RECORDINGS
from retention.service.runmetrics import RecordedRun, last_recorded_run
from retention.settings import Settings

# A schedule that does not fire while a test reads what the restarted daemon reports.
HOURLY = "@every 1h"


def _last_run_metrics(proc: Any) -> tuple[dict[str, float], float]:
    """The last-run states and the last-run timestamp the daemon's `/metrics` exports."""
    states: dict[str, float] = {}
    timestamps: list[float] = []
    for family in text_string_to_metric_families(proc.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "retention_last_run_result":
                states[sample.labels["retention_last_run_result"]] = sample.value
            elif sample.name == "retention_last_run_timestamp_seconds":
                timestamps.append(sample.value)
    (timestamp,) = timestamps
    return states, timestamp


def _recorded_finish(dep: Any) -> datetime:
    return _recorded_run(dep)[0]


def _recorded_run(dep: Any) -> tuple[datetime, str]:
    """When the record's last run ended, and its result as health reports it."""
    with closing(sqlite3.connect(dep.state_dir / "audit.db")) as conn:
        moment, result = conn.execute(
            "SELECT time, json_extract(data, '$.result') FROM events"
            " WHERE event = 'run_finished' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    # A run that SIGTERM halted is reported failed.
    return datetime.fromisoformat(moment), {"ok": "ok", "halted": "failed"}[result]


@pytest.mark.e2e
def test_a_restarted_daemon_reports_the_previous_run_from_healthz_metrics_and_status(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS)
    first = daemon(dep, schedule="@every 5s")
    notify_socket.wait_for("READY")
    summary = first.wait_for_run()
    assert summary["result"] == "ok"
    # SIGTERM may catch a second run starting: whichever ended last is what the record says.
    assert first.stop() == 0
    finished, state = _recorded_run(dep)
    notify_socket.messages.clear()

    second = daemon(dep, schedule=HOURLY)
    ready = notify_socket.wait_for("READY")
    assert ready["STATUS"].startswith(f"last run {state} at "), ready["STATUS"]
    health = second.get("/healthz").json()
    assert health["last_run"]["result"] == state
    assert datetime.fromisoformat(health["last_run"]["at"]) == finished
    states, timestamp = _last_run_metrics(second)
    assert states[state] == 1.0
    assert states["never"] == 0.0
    assert timestamp == finished.timestamp()
    ran = [e for e in second.events() if e["event"] == "run finished"]
    assert ran == [], "the hourly schedule did not fire: what it reports is the earlier run"
    assert second.stop() == 0


@pytest.mark.e2e
def test_a_run_the_cli_made_is_the_last_run_a_starting_daemon_reports(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS)
    before = datetime.now(UTC)
    dep.cli("run", "--yes", check=True)
    finished = _recorded_finish(dep)
    assert finished >= before

    proc = daemon(dep, schedule=HOURLY)
    notify_socket.wait_for("READY")
    health = proc.get("/healthz").json()
    assert health["last_run"]["result"] == "ok"
    assert datetime.fromisoformat(health["last_run"]["at"]) == finished
    states, timestamp = _last_run_metrics(proc)
    assert states["ok"] == 1.0
    assert timestamp == finished.timestamp()
    assert proc.stop() == 0


@pytest.mark.e2e
def test_a_daemon_on_a_new_state_directory_reports_no_run_yet(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS)
    proc = daemon(dep, schedule=HOURLY)
    notify_socket.wait_for("READY")
    assert proc.get("/healthz").json()["last_run"] == {
        "result": "never",
        "at": None,
        "error": None,
        "reason": None,
    }
    states, timestamp = _last_run_metrics(proc)
    assert states["never"] == 1.0
    assert timestamp == 0.0
    assert proc.stop() == 0


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
