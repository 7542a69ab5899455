"""The record takes review mode's events, in a new log and in one an earlier version made."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.audit.log import AuditLog
from retention.audit.store import EVENT_KINDS, GENESIS_HASH, _events_table
from retention.audit.verify import verify_log

CLOCK = lambda: datetime(2026, 12, 1, tzinfo=UTC)  # noqa: E731
BEFORE_PROPOSALS = EVENT_KINDS[: EVENT_KINDS.index("log_started") + 1]


def earlier_log(path: Path) -> None:
    """A log as the version before proposals wrote it: its CHECK list lacks their kinds, its
    keys are INTEGER columns."""
    AuditLog.open(path, subject_mode="hash", clock=CLOCK).close()
    conn = sqlite3.connect(path, isolation_level=None)
    (version,) = conn.execute("PRAGMA schema_version").fetchone()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = ? WHERE name = 'events'",
        [_events_table(BEFORE_PROPOSALS, "INTEGER")],
    )
    conn.execute(f"PRAGMA schema_version = {version + 1}")
    conn.execute("PRAGMA writable_schema = OFF")
    conn.execute(
        "DELETE FROM _sqlite_migrations WHERE name IN ('m002_event_kinds', 'm003_keys_any')"
    )
    conn.close()


@pytest.mark.parametrize("made_before", [False, True])
def test_proposals_and_expiries_are_recorded_and_the_log_verifies(
    tmp_path: Path, made_before: bool
) -> None:
    path = tmp_path / "audit.db"
    if made_before:
        earlier_log(path)
        conn = sqlite3.connect(path, isolation_level=None)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute(
                "INSERT INTO events (seq, time, event, data, prev_hash, hash)"
                " VALUES (1, 't', 'plan_proposed', '{}', ?, 'y')",
                [GENESIS_HASH],
            )
        conn.close()
    log = AuditLog.open(path, subject_mode="hash", clock=CLOCK)
    log.plan_review("plan_proposed", run_id="r1", plan_id="p1", data={"file": "a.json"})
    log.plan_review("plan_expired", run_id="r2", plan_id="p1", data={"file": "a.json"})
    log.close()

    report = verify_log(path)
    assert report.schema == []
    assert report.valid_rows == report.rows == 2
    kinds = [
        row[0] for row in sqlite3.connect(path).execute("SELECT event FROM events ORDER BY seq")
    ]
    assert kinds == ["plan_proposed", "plan_expired"]
