"""A restarted daemon reports the last run from the record: its own, or one the CLI made."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from retention.sandbox.policies import RECORDINGS_30D as RECORDINGS

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
