"""No silent new record: `audit init --new-log` is the only way, and it names what it follows."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlite_utils import Database
from support import invoke_retention

from retention.audit import AuditLog
from retention.audit.head import last_head
from retention.audit.preflight import AuditUnverified, verify_before_write
from retention.audit.store import TRIGGERS

Opener = Callable[..., AuditLog]
RunWriter = Callable[..., list[int]]
REPO = Path(__file__).resolve().parents[2]


def _retention(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RETENTION_") and key != "CREDENTIALS_DIRECTORY"
    }
    state_dir.mkdir(parents=True, exist_ok=True)
    config = state_dir / "retention.toml"
    config.touch()
    env.update(
        RETENTION_STATE_DIR=str(state_dir),
        RETENTION_CONFIG=str(config),
        PYTHONPATH=str(REPO),
    )
    return invoke_retention(
        *args,
        env=env,
        timeout=120,
    )


@pytest.fixture
def lost(open_log: Opener, write_run: RunWriter, db_path: Path) -> tuple[str, int, str]:
    """A sealed record whose audit.db was then deleted: (log id, rows, head) it had."""
    log = open_log(signing_key=None)
    write_run(log)
    sealed = log.checkpoint(state=Database(db_path.parent / "state.db"))
    log.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    return sealed.log_id, sealed.rows, sealed.head


def test_a_lost_record_is_replaced_only_on_purpose_and_the_new_one_names_it(
    lost: tuple[str, int, str], db_path: Path
) -> None:
    old_id, rows, head = lost
    state_dir = db_path.parent
    checkpoints = state_dir / "audit-checkpoints.jsonl"
    state = Database(state_dir / "state.db")
    with pytest.raises(AuditUnverified):
        verify_before_write(db_path, checkpoints, last_head=last_head(state))
    verified = _retention(state_dir, "audit", "verify")
    assert verified.returncode == 2, verified.stderr
    assert "no audit record at" in verified.stderr
    assert not db_path.exists()

    started = _retention(state_dir, "audit", "init", "--new-log", "--reason", "disk replaced")
    assert started.returncode == 0, started.stderr
    assert f"following log {old_id}" in started.stdout
    assert checkpoints.with_name(f"audit-checkpoints.{old_id}.jsonl").exists()
    conn = sqlite3.connect(db_path)
    first = conn.execute("SELECT event, data FROM events WHERE seq = 1").fetchone()
    new_id = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
    conn.close()
    assert first[0] == "log_started"
    assert json.loads(first[1]) == {
        "previous_log_id": old_id,
        "previous_head": {"rows": rows, "head": head},
        "reason": "disk replaced",
    }
    # The new log's own checkpoint was remembered: the service may write to it again.
    written = last_head(Database(state_dir / "state.db"))
    assert written is not None
    assert written.log_id == new_id
    verify_before_write(db_path, checkpoints, last_head=written)
    verified = _retention(state_dir, "audit", "verify")
    assert verified.returncode == 0, verified.stdout
    assert "Result: CLEAN, signatures not checked" in verified.stdout


def test_the_old_checkpoint_file_is_kept_under_the_old_log_id(
    lost: tuple[str, int, str], db_path: Path
) -> None:
    old_id = lost[0]
    before = (db_path.parent / "audit-checkpoints.jsonl").read_bytes()
    started = _retention(db_path.parent, "audit", "init", "--new-log", "--reason", "lost")
    assert started.returncode == 0, started.stderr
    kept = db_path.parent / f"audit-checkpoints.{old_id}.jsonl"
    assert kept.read_bytes() == before
    lines = (db_path.parent / "audit-checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(line)["log_id"] != old_id for line in lines] == [True]


def test_a_new_log_without_a_reason_is_a_usage_error(tmp_path: Path) -> None:
    result = _retention(tmp_path, "audit", "init", "--new-log")
    assert result.returncode == 2
    assert not (tmp_path / "audit.db").exists()


def test_audit_checkpoint_takes_db_and_refuses_a_record_that_does_not_verify(
    open_log: Opener, write_run: RunWriter, db_path: Path, tmp_path: Path
) -> None:
    log = open_log(signing_key=None)
    write_run(log)
    log.run_started(run_id="run-2", trigger="manual", settings_summary={})
    log.close()
    elsewhere = tmp_path / "elsewhere"
    sealed = _retention(elsewhere, "audit", "checkpoint", "--db", str(db_path))
    assert sealed.returncode == 0, sealed.stderr
    assert "checkpoint: 13 rows" in sealed.stdout
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET run = 'run-x' WHERE seq = 14")
    conn.execute(TRIGGERS["events_no_update"])
    conn.close()
    before = (db_path.parent / "audit-checkpoints.jsonl").read_bytes()
    refused = _retention(elsewhere, "audit", "checkpoint", "--db", str(db_path))
    assert refused.returncode == 1
    assert "row 14: stored hash does not match its contents" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert (db_path.parent / "audit-checkpoints.jsonl").read_bytes() == before
