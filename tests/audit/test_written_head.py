"""The written head: the record must end where the service left it, before or after its last
commit; rows past it, or rows missing, refuse the check before write and the next append."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlite_utils import Database

from retention.audit import AuditLog
from retention.audit.head import HeadKeeper, HeadMark, RowHead, compare_written, written_mark
from retention.audit.preflight import AuditUnverified, verify_before_write
from retention.audit.store import EVENT_KINDS, AuditError, _events_table
from retention.audit.verify import verify_log

Opener = Callable[..., AuditLog]
RunWriter = Callable[..., list[int]]


@pytest.fixture
def state_db(db_path: Path) -> Path:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return db_path.parent / "state.db"


def _mark(state_db: Path) -> HeadMark:
    mark = written_mark(Database(state_db))
    assert mark is not None
    return mark


def _check(db_path: Path, state_db: Path) -> None:
    verify_before_write(
        db_path, db_path.parent / "audit-checkpoints.jsonl", written=_mark(state_db), full=True
    )


def _refused(db_path: Path, state_db: Path) -> AuditUnverified:
    with pytest.raises(AuditUnverified) as caught:
        _check(db_path, state_db)
    assert caught.value.reason == "audit_unverified"
    return caught.value


def _head(db_path: Path) -> RowHead:
    conn = sqlite3.connect(db_path)
    seq, digest = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    conn.close()
    return RowHead(seq, digest)


def test_each_commit_keeps_the_head_before_and_after_it(
    open_log: Opener, write_run: RunWriter, db_path: Path, state_db: Path
) -> None:
    log = open_log(state_db=state_db)
    write_run(log)
    before = _head(db_path)
    log.run_started(run_id="run-2", trigger="schedule", settings_summary={})
    mark = _mark(state_db)
    assert mark.log_id == log.log_id
    assert mark.previous == before
    assert mark.intended == _head(db_path)
    assert mark.intended.rows == before.rows + 1
    _check(db_path, state_db)


def test_a_crash_between_the_two_commits_is_accepted_and_the_next_append_goes_on(
    open_log: Opener, write_run: RunWriter, db_path: Path, state_db: Path
) -> None:
    log = open_log(state_db=state_db)
    write_run(log)
    head = _head(db_path)
    # The state's commit went through, the record's did not: the record ends at `previous`.
    keeper = HeadKeeper.open(state_db)
    keeper.intend(log.log_id, head, RowHead(head.rows + 2, "e" * 64))
    keeper.close()
    _check(db_path, state_db)
    log.run_started(run_id="run-2", trigger="schedule", settings_summary={})
    assert _mark(state_db).previous == head


def test_rows_another_process_appended_are_named_and_refused_before_anything_is_signed(
    open_log: Opener, write_run: RunWriter, db_path: Path, state_db: Path
) -> None:
    service = open_log(state_db=state_db)
    write_run(service, run_id="run-1")
    sealed = _head(db_path)
    # Another process, with write access, appends a whole invented run, correctly hashed.
    forger = open_log()
    write_run(forger, run_id="run-invented", sessions=1)
    forger.close()
    length = _head(db_path).rows
    refused = _refused(db_path, state_db)
    assert refused.finding == "foreign_rows"
    assert f"rows {sealed.rows + 1}..{length} were not written by this service" in refused.message
    report = verify_log(db_path, written=_mark(state_db))
    assert ("foreign_rows", sealed.rows + 1) in [(f.code, f.seq) for f in report.findings]
    # The service's own writer will not extend (nor seal) them either.
    with pytest.raises(AuditError, match="were not written by this service"):
        service.checkpoint()
    assert _head(db_path).rows == length


def test_a_record_shorter_than_the_written_head_is_refused(
    open_log: Opener, write_run: RunWriter, db_path: Path, state_db: Path, tmp_path: Path
) -> None:
    log = open_log(state_db=state_db)
    write_run(log, run_id="run-1")
    log.close()
    older = tmp_path / "older.db"
    shutil.copy(db_path, older)
    log = open_log(state_db=state_db)
    log.run_started(run_id="run-2", trigger="schedule", settings_summary={})
    first_intent = log.intent(
        run_id="run-2",
        plan_id="plan-2",
        policy="recordings-90d",
        policy_hash="c" * 64,
        action="delete_recordings",
        organizer_key=100,
        meeting_id=5000,
        session_id=7100,
        subject=None,
        start_time=None,
        end_time=None,
        recording_ids=["rec-9"],
        recording_bytes=10,
        attendee_count=None,
    )
    log.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(older, db_path)  # an older copy restored
    refused = _refused(db_path, state_db)
    assert refused.finding == "lost_rows"
    assert f"before row {first_intent - 1} this service wrote" in refused.message
    codes = [f.code for f in verify_log(db_path, written=_mark(state_db)).findings]
    assert codes == ["lost_rows"]


def test_adopting_the_record_names_both_heads_and_moves_the_written_head(
    open_log: Opener, write_run: RunWriter, db_path: Path, state_db: Path
) -> None:
    service = open_log(state_db=state_db)
    write_run(service, run_id="run-1")
    service.close()
    forger = open_log()
    forger.run_started(run_id="run-invented", trigger="manual", settings_summary={})
    forger.close()
    found = _head(db_path)
    written = _mark(state_db)
    log = open_log(state_db=state_db)
    seq = log.adopted(mark=written, reason="a test run by the operator, checked")
    log.checkpoint()
    _check(db_path, state_db)
    conn = sqlite3.connect(db_path)
    event, data = conn.execute("SELECT event, data FROM events WHERE seq = ?", [seq]).fetchone()
    conn.close()
    assert event == "adopted"
    assert f'"record_head":{{"head":"{found.hash}","rows":{found.rows}}}' in data
    assert f'"rows":{written.intended.rows}' in data
    assert '"reason":"a test run by the operator, checked"' in data


@pytest.mark.parametrize(
    ("length", "finding"),
    [(10, None), (12, None), (13, "foreign_rows"), (11, "foreign_rows"), (9, "lost_rows")],
)
def test_the_record_may_end_at_the_head_before_or_after_the_last_commit(
    length: int, finding: str | None
) -> None:
    mark = HeadMark("log", RowHead(10, "a" * 64), RowHead(12, "b" * 64))
    hashes = {10: "a" * 64, 12: "b" * 64}
    found = compare_written(mark, "log", length, lambda seq: hashes.get(seq, "f" * 64))
    assert (found.finding if found else None) == finding


def test_a_last_row_rewritten_in_place_is_not_the_one_the_service_wrote() -> None:
    mark = HeadMark("log", RowHead(10, "a" * 64), RowHead(12, "b" * 64))
    found = compare_written(mark, "log", 12, lambda seq: "a" * 64 if seq == 10 else "c" * 64)
    assert found is not None
    assert found.finding == "foreign_rows"
    assert found.rows == (11, 12)


def test_a_log_made_before_adoptions_takes_one_once_opened_for_writing(
    open_log: Opener, write_run: RunWriter, db_path: Path, state_db: Path
) -> None:
    log = open_log(state_db=state_db)
    write_run(log)
    log.close()
    before = EVENT_KINDS[: EVENT_KINDS.index("notice_sent") + 1]
    conn = sqlite3.connect(db_path, isolation_level=None)
    (version,) = conn.execute("PRAGMA schema_version").fetchone()
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = ? WHERE name = 'events'", [_events_table(before, "INTEGER")]
    )
    conn.execute(f"PRAGMA schema_version = {version + 1}")
    conn.execute("PRAGMA writable_schema = OFF")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_keys_any'")
    conn.close()
    assert verify_log(db_path).schema == []  # an earlier version's log is not a finding
    forger = open_log()  # opening for writing widens the kinds (m003), rows untouched
    forger.run_started(run_id="run-invented", trigger="manual", settings_summary={})
    forger.close()
    log = open_log(state_db=state_db)
    log.adopted(mark=_mark(state_db), reason="checked")
    log.close()
    report = verify_log(db_path, written=_mark(state_db))
    assert report.findings == []
    assert report.rows == 14
