"""The record is trusted only as far as the service wrote it: rows another process appended, and
rows lost with the WAL's tail after a kill -9, refuse the next run until an operator adopts the
record as it is (`retention audit adopt --reason`)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.audit import AuditLog
from retention.sandbox.policies import policy_set, rule

from .conftest import DELETE_OLDER_THAN_1D, Service

SANDBOX = ("--seed", "5", "--days", "60", "--sessions-per-day", "4")
NOTHING_DUE = policy_set(rule("sessions", 400))
WAL_HEADER, FRAME = 32, 24 + 4096  # a WAL frame: its header and one 4 KiB page


def refused_unverified(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "reason: audit_unverified" in result.stderr.splitlines(), result.stderr
    return result.stderr


def verified(dep: Service) -> tuple[int, dict[str, object]]:
    done = dep.cli("audit", "verify", "--state-dir", str(dep.state_dir), "--format", "json")
    return done.returncode, json.loads(done.stdout)


def codes(report: dict[str, object]) -> list[str]:
    findings = report["findings"]
    assert isinstance(findings, list)
    return [str(finding["code"]) for finding in findings]


def adopted(dep: Service, reason: str) -> None:
    done = dep.cli("audit", "adopt", "--reason", reason)
    assert done.returncode == 0, done.stderr
    events = [e for e in dep.events() if e["event"] == "adopted"]
    assert len(events) == 1
    assert reason in json.dumps(events[0])


def a_session_still_there(dep: Service) -> tuple[int, int, int]:
    with sqlite3.connect(dep.state_dir / "state.db") as db:
        row = db.execute(
            "SELECT organizer_key, meeting_id, session_id FROM sessions LIMIT 1"
        ).fetchone()
    return int(row[0]), int(row[1]), int(row[2])


def invent_a_run(audit_db: Path, organizer: int, meeting: int, session: int) -> None:
    """Another process with write access appends a whole run, every row correctly hashed."""
    with AuditLog.open(audit_db, subject_mode="hash", clock=lambda: datetime.now(UTC)) as log:
        log.run_started(run_id="run-invented", trigger="manual", settings_summary={})
        seq = log.intent(
            run_id="run-invented",
            plan_id="plan-invented",
            policy="sessions-400d",
            policy_hash="c" * 64,
            action="delete_session",
            organizer_key=organizer,
            meeting_id=meeting,
            session_id=session,
            subject=None,
            start_time=None,
            end_time=None,
            recording_ids=[],
            recording_bytes=None,
            attendee_count=3,
        )
        log.outcome(intent_seq=seq, outcome="deleted", status=204, reason=None)
        log.run_finished(run_id="run-invented", counts={"deleted": 1}, result="ok")


def test_a_run_another_process_appended_is_named_refused_unsigned_then_adopted(
    service: Callable[..., Service],
) -> None:
    dep = service(*SANDBOX, policies=NOTHING_DUE)
    dep.cli("run", "--yes", check=True)
    audit_db, checkpoints = dep.state_dir / "audit.db", dep.state_dir / "audit-checkpoints.jsonl"
    invent_a_run(audit_db, *a_session_still_there(dep))
    with sqlite3.connect(audit_db) as db:
        length = int(db.execute("SELECT max(seq) FROM events").fetchone()[0])
    code, report = verified(dep)
    assert code == 1
    assert codes(report) == ["foreign_rows"]
    assert f"rows {length - 3}..{length} were not written by this service" in json.dumps(report)

    sealed, mark = checkpoints.read_bytes(), len(dep.requests())
    stderr = refused_unverified(dep.cli("run", "--yes"))
    assert f"rows {length - 3}..{length} were not written by this service" in stderr
    assert "retention audit adopt" in stderr
    assert dep.requests(mark) == [], "nothing was scanned"
    assert checkpoints.read_bytes() == sealed, "nothing was signed over the invented rows"

    adopted(dep, "rows 5-8: a restore test by the operator, checked against the API")
    dep.cli("run", "--yes", check=True)
    assert verified(dep)[0] == 0


@pytest.mark.e2e
def test_wal_frames_lost_after_a_kill_9_refuse_the_next_run_until_adopted(
    service: Callable[..., Service],
) -> None:
    dep = service(*SANDBOX, policies=NOTHING_DUE)
    dep.cli("run", "--yes", check=True)  # a clean exit folds the WAL into the record
    (dep.policy_dir / "policies.yaml").write_text(DELETE_OLDER_THAN_1D)
    killed = dep.cli(
        "run", "--yes", extra_env={"RETENTION_FAILPOINTS": "after_response=40"}, process=True
    )
    assert killed.returncode == -9, killed.stderr[-2000:]
    audit_db = dep.state_dir / "audit.db"
    wal = Path(f"{audit_db}-wal")
    frames = (wal.stat().st_size - WAL_HEADER) // FRAME
    assert frames > 8, frames
    # The disk loses the WAL's tail (a torn frame included); the shared index goes with it.
    with wal.open("r+b") as handle:
        handle.truncate(WAL_HEADER + frames // 2 * FRAME + FRAME // 3)
    Path(f"{audit_db}-shm").unlink()

    mark = len(dep.requests())
    stderr = refused_unverified(dep.cli("run", "--yes"))
    assert "this service wrote" in stderr
    assert dep.requests(mark) == [], "nothing was scanned or removed"
    code, report = verified(dep)
    assert code == 1
    assert "lost_rows" in codes(report)

    adopted(dep, "WAL tail lost in the crash; removals checked against the API")
    dep.cli("run", "--yes", check=True)
