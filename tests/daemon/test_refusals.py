"""The daemon shows a refusal: /healthz 503 with the reason, the record's gauge.

In-process on the sandbox: the daemon started as `serve` starts it (tests/indaemon.py), its
schedule fired on the test's clock, `/healthz` and `/metrics` read from its own app.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from indaemon import Clock, cli, daemon, events, scrape, started
from routes import Folder, World
from structlog.testing import capture_logs

from retention.audit.store import TRIGGERS
from retention.service import pipeline
from retention.service.context import RunContext

pytestmark = pytest.mark.anyio

HOLD_ON_A_MISSPELT_GROUP = """
holds:
  - id: LIT-9
    reason: Litigation over the finance group's meetings.
    scope: {groups: [Finanse]}
"""


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


def refused_runs(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] in {"start-up refused", "scheduled run did not complete"}]


async def test_a_tampered_record_makes_the_daemon_refuse_every_run_and_report_it(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    clock = Clock()
    # What `retention run --yes` runs (retention/cli/plan.py), on the world's account.
    ctx = RunContext(world.settings(), clock=clock, transport=world.spy)
    first = await pipeline.run(ctx, trigger="run", confirm=None, approved_by="ops (--yes)")
    assert first.result == "ok"
    audit_db = world.state_dir / "audit.db"
    checkpoints = (world.state_dir / "audit-checkpoints.jsonl").read_bytes()
    # Row 3 is sealed by the last checkpoint: only a pass that rehashes every row sees it.
    original = edit_without_rehashing(audit_db, 3, "run-forged")
    before = rows(audit_db)
    mark = len(world.spy.requests)

    made = daemon(world, clock)
    (spec,) = (schedule.spec for schedule in made.schedules)
    with capture_logs() as logs:
        async with started(made) as up:
            assert up, "the daemon stays up and keeps refusing"
            [refused] = refused_runs(logs)
            assert refused["event"] == "start-up refused"
            clock.now += timedelta(days=1)
            await made.run_due(spec)
            [_start_up, scheduled] = refused_runs(logs)
            assert scheduled["event"] == "scheduled run did not complete"
            assert scheduled["reason"] == "audit_unverified"

            served = await scrape(made)
            assert served.health_status == 503
            assert served.health["last_run"]["reason"] == "audit_unverified"
            assert served.health["problems"] == ["last run refused: audit_unverified"]
            assert served.gauge("retention_audit_ok") == 0.0
            assert rows(audit_db) == before, "nothing is appended to a record that does not verify"
            assert (world.state_dir / "audit-checkpoints.jsonl").read_bytes() == checkpoints
            assert world.spy.requests[mark:] == [], "nothing is scanned, nothing removed"
            assert made.crashed is None, "the daemon stays up and keeps refusing"

            edit_without_rehashing(audit_db, 3, original)  # restored: `audit verify` is clean
            verified = cli(world, "audit", "verify")
            assert verified.returncode == 0, verified.stdout + verified.stderr
            seen = len(logs)
            clock.now += timedelta(days=1)
            await made.run_due(spec)
            [recovered] = [e for e in logs[seen:] if e["event"] == "run finished"]
            assert recovered["result"] == "ok"
            served = await scrape(made)
            assert served.health_status == 200
            assert served.gauge("retention_audit_ok") == 1.0


async def test_a_hold_naming_an_unknown_group_makes_the_daemon_unhealthy_and_metrics_show_it(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    assert "Finanse" not in world.groups
    (world.policy_dir / "holds.yaml").write_text(HOLD_ON_A_MISSPELT_GROUP)
    clock = Clock()
    made = daemon(world, clock, checkpoint_command="false")  # a witness that always fails
    with capture_logs() as logs:
        async with started(made):
            clock.now += timedelta(days=1)
            await made.run_due(made.schedules[0].spec)
            served = await scrape(made)
    [summary] = [e for e in logs if e["event"] == "run finished"]
    assert summary["result"] == "refused"
    assert served.health_status == 503
    assert served.health["last_run"]["reason"] == "unknown_name"
    assert "Finanse" in served.health["last_run"]["error"]
    assert served.gauge("retention_audit_ok") == 1.0
    assert abs(served.gauge("retention_clock_skew_seconds")) < 300
    assert served.gauge("retention_witness_failures_total") >= 1
    assert world.spy.deleted == []
    refused = events(world, "refused")
    assert refused, "the refusal is in the record"
    assert all(e["reason"] == "unknown_name" for e in refused)
