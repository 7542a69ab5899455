"""The daemon as a subprocess shows a refusal: /healthz 503 with the reason, the record's gauge."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from retention.audit.store import TRIGGERS
from retention.sandbox.policies import RECORDINGS_30D

pytestmark = pytest.mark.e2e

HOLD_ON_A_MISSPELT_GROUP = """
holds:
  - id: LIT-9
    reason: Litigation over the finance group's meetings.
    scope: {groups: [Finanse]}
"""


def gauge(text: str, name: str) -> float:
    """The value of one unlabelled sample of a Prometheus exposition."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    raise AssertionError(f"no sample {name}")


def rows(audit_db: Path) -> int:
    conn = sqlite3.connect(f"file:{audit_db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def edit_without_rehashing(audit_db: Path, seq: int, run: str) -> str:
    """What an attacker with write access does: change a row, leave every hash alone.

    Returns the value it replaced."""
    conn = sqlite3.connect(audit_db, isolation_level=None)
    (before,) = conn.execute("SELECT run FROM events WHERE seq = ?", [seq]).fetchone()
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET run = ? WHERE seq = ?", [run, seq])
    conn.execute(TRIGGERS["events_no_update"])
    conn.close()
    return str(before)


def refused_runs(proc: Any, after: int = 0) -> list[dict[str, Any]]:
    return [
        e
        for e in proc.events()[after:]
        if e["event"] in {"start-up refused", "scheduled run did not complete"}
    ]


def test_a_tampered_record_makes_the_daemon_refuse_every_run_and_report_it(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS_30D)
    first = dep.cli("run", "--yes")
    assert first.returncode == 0, first.stderr
    audit_db = dep.state_dir / "audit.db"
    checkpoints = (dep.state_dir / "audit-checkpoints.jsonl").read_bytes()
    # Row 3 is sealed by the last checkpoint: only a pass that rehashes every row sees it.
    original = edit_without_rehashing(audit_db, 3, "run-forged")
    before = rows(audit_db)
    mark = len(dep.server.requests())

    proc = daemon(dep)
    notify_socket.wait_for("READY")
    proc.wait_for_event(lambda e: e["event"] == "start-up refused")
    seen = len(proc.events())
    scheduled = proc.wait_for_event(
        lambda e: e["event"] == "scheduled run did not complete", after=seen
    )
    assert scheduled["reason"] == "audit_unverified"

    health = proc.get("/healthz")
    assert health.status_code == 503
    body = health.json()
    assert body["last_run"]["reason"] == "audit_unverified"
    assert body["problems"] == ["last run refused: audit_unverified"]
    exposition = proc.get("/metrics").text
    assert gauge(exposition, "retention_audit_ok") == 0.0
    assert rows(audit_db) == before, "nothing is appended to a record that does not verify"
    assert (dep.state_dir / "audit-checkpoints.jsonl").read_bytes() == checkpoints
    assert dep.server.requests(mark) == [], "nothing is scanned, nothing removed"
    assert proc.proc.poll() is None, "the daemon stays up and keeps refusing"

    edit_without_rehashing(audit_db, 3, original)  # restored: `audit verify` is clean again
    assert dep.cli("audit", "verify").returncode == 0
    recovered = proc.wait_for_run(after=len(proc.events()))
    assert recovered["result"] == "ok"
    assert proc.get("/healthz").status_code == 200
    assert gauge(proc.get("/metrics").text, "retention_audit_ok") == 1.0
    assert proc.stop() == 0


def test_a_hold_naming_an_unknown_group_makes_the_daemon_unhealthy_and_metrics_show_it(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS_30D)
    (dep.policy_dir / "holds.yaml").write_text(HOLD_ON_A_MISSPELT_GROUP)
    proc = daemon(dep, RETENTION_CHECKPOINT_COMMAND="false")  # a witness that always fails
    notify_socket.wait_for("READY")
    summary = proc.wait_for_run()
    assert summary["result"] == "refused"
    health = proc.get("/healthz")
    assert health.status_code == 503
    assert health.json()["last_run"]["reason"] == "unknown_name"
    assert "Finanse" in health.json()["last_run"]["error"]
    exposition = proc.get("/metrics").text
    assert gauge(exposition, "retention_audit_ok") == 1.0
    assert abs(gauge(exposition, "retention_clock_skew_seconds")) < 300
    assert gauge(exposition, "retention_witness_failures_total") >= 1
    assert dep.deletes() == []
    refused = [e for e in dep.events() if e["event"] == "refused"]
    assert refused, "the refusal is in the record"
    assert all(e["reason"] == "unknown_name" for e in refused)
    assert proc.stop() == 0
