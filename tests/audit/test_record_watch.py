"""The daemon's record check: full at start-up, then only the rows since the head it verified."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from retention.audit import AuditLog
from retention.audit.preflight import AuditUnverified
from retention.audit.store import TRIGGERS
from retention.policy import load_policy_set
from retention.service.checks import RecordWatch
from retention.service.session import Opening
from retention.settings import Settings

Opener = Callable[..., AuditLog]
RunWriter = Callable[..., list[int]]


@pytest.fixture
def opening(db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Opening:
    for name in ("RETENTION_SIGNING_KEY", "RETENTION_TRUSTED_KEYS", "RETENTION_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "policies.yaml").write_text(
        "policies:\n  - {name: all-1d, description: d, action: delete_session, after: 1d}\n"
    )
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return Opening(
        Settings(state_dir=db_path.parent),
        lambda: datetime.now(UTC),
        Database(db_path.parent / "state.db"),
        load_policy_set([policies]),
    )


def edit(path: Path, statement: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute(statement)
    conn.execute(TRIGGERS["events_no_update"])
    conn.close()


def test_after_its_first_full_check_the_daemon_rehashes_only_what_came_since(
    open_log: Opener, write_run: RunWriter, db_path: Path, opening: Opening
) -> None:
    log = open_log(signing_key=None)
    write_run(log, run_id="run-1")
    log.close()
    edit(db_path, "UPDATE events SET run = 'run-x' WHERE seq = 2")  # sealed by the checkpoint
    watch = RecordWatch()
    with pytest.raises(AuditUnverified, match="row 2: stored hash"):
        watch(opening)  # the first check rehashes every row
    assert watch.ok is False
    edit(db_path, "UPDATE events SET run = 'run-1' WHERE seq = 2")
    watch(opening)
    assert watch.ok is True
    assert watch.verified is not None
    assert watch.verified.rows == 12

    log = open_log(signing_key=None)
    write_run(log, run_id="run-2")
    log.close()
    # The trade-off: a row the daemon verified before is not rehashed by its later runs.
    edit(db_path, "UPDATE events SET run = 'run-x' WHERE seq = 2")
    watch(opening)
    assert watch.verified.rows == 24
    # A row appended since its last check is.
    log = open_log(signing_key=None)
    log.run_started(run_id="run-3", trigger="schedule", settings_summary={})
    log.close()
    edit(db_path, "UPDATE events SET run = 'run-x' WHERE seq = 25")
    with pytest.raises(AuditUnverified, match="row 25: stored hash"):
        watch(opening)
    edit(db_path, "UPDATE events SET run = 'run-3' WHERE seq = 25")
    # After a failure the check is full again: the older edit is found now.
    with pytest.raises(AuditUnverified, match="row 2: stored hash"):
        watch(opening)
    assert watch.ok is False
