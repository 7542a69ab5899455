"""The log writer: events, subjects, outcomes, durability, concurrency, checkpoints and keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from records import intent_fields
from structlog.testing import capture_logs

from retention.audit import (
    AuditError,
    AuditInputError,
    AuditLog,
    generate_key_pair,
    load_signing_key,
    verify_log,
)

Opener = Callable[..., AuditLog]
REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 30, 3, 0, tzinfo=UTC)
RunWriter = Callable[..., list[int]]


def _intent(log: AuditLog, session_id: int = 7000, subject: str | None = "Board") -> int:
    return log.intent(
        **intent_fields(
            session_id,
            policy="p",
            meeting_id=5000,
            subject=subject,
            start_time=START,
            end_time=START,
        )
    )


def _subjects(path: Path) -> list[object]:
    conn = sqlite3.connect(path)
    rows = conn.execute("SELECT data FROM events WHERE event = 'intent' ORDER BY seq").fetchall()
    conn.close()
    return [json.loads(data)["subject"] for (data,) in rows]


def test_clean_log_verifies_and_every_hash_follows_the_documented_recipe(
    open_log: Opener,
    db_path: Path,
    write_run: RunWriter,
    auditor_hashes: Callable[[Path], list[tuple[int, str, str]]],
) -> None:
    write_run(open_log())
    report = verify_log(db_path)
    assert report.clean, report.findings
    recomputed = auditor_hashes(db_path)
    assert [seq for seq, _, _ in recomputed] == list(range(1, 13))
    assert all(ours == stored for _, ours, stored in recomputed)
    assert report.head_hash == recomputed[-1][2]


def test_first_row_links_to_64_zeros(open_log: Opener, db_path: Path) -> None:
    open_log().run_started(run_id="r", trigger="manual", settings_summary={})
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT prev_hash FROM events WHERE seq = 1").fetchone() == ("0" * 64,)
    conn.close()


def test_hash_mode_stores_a_salted_hmac_that_correlates_equal_subjects(
    open_log: Opener, db_path: Path
) -> None:
    log = open_log(subject_mode="hash")
    for session in (1, 2, 3):
        _intent(log, session, subject="Acme merger" if session < 3 else "Other")
    conn = sqlite3.connect(db_path)
    salt = conn.execute("SELECT value FROM meta WHERE key = 'subject_salt'").fetchone()[0]
    conn.close()
    expected = hmac.new(bytes.fromhex(salt), b"Acme merger", hashlib.sha256).hexdigest()
    first, second, third = _subjects(db_path)
    assert first == second == expected
    assert third != expected
    log.close()
    assert b"Acme merger" not in db_path.read_bytes()


def test_keep_and_omit_modes_store_the_subject_or_nothing(open_log: Opener, db_path: Path) -> None:
    _intent(open_log(subject_mode="keep"), 1, subject="Weekly sync")
    _intent(open_log(subject_mode="omit"), 2, subject="Weekly sync")
    assert _subjects(db_path) == ["Weekly sync", None]


def test_intent_takes_no_attendee_names_or_emails(open_log: Opener, db_path: Path) -> None:
    log = open_log(subject_mode="keep")
    parameters = set(inspect.signature(log.intent).parameters)
    assert not {name for name in parameters if "email" in name or "attendee_name" in name}
    _intent(log, subject="Interview")
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM events WHERE event = 'intent'").fetchone()
    conn.close()
    data = json.loads(row["data"])
    # Only the number of attendees is recorded, never who they were.
    assert [key for key in data if key.startswith("attendee")] == ["attendee_count"]
    assert data["attendee_count"] == 3
    assert not any("@" in str(row[column]) for column in row.keys())  # noqa: SIM118


def test_second_outcome_for_one_intent_is_refused(open_log: Opener) -> None:
    log = open_log()
    seq = _intent(log)
    log.outcome(intent_seq=seq, outcome="deleted", status=204, reason=None)
    with pytest.raises(AuditError, match=f"intent {seq} already has its outcome"):
        log.outcome(intent_seq=seq, outcome="failed", status=500, reason="boom")


def test_outcome_must_name_an_intent_and_a_failure_needs_a_reason(open_log: Opener) -> None:
    log = open_log()
    started = log.run_started(run_id="r", trigger="manual", settings_summary={})
    with pytest.raises(AuditError, match="is not an intent"):
        log.outcome(intent_seq=started, outcome="deleted", status=204, reason=None)
    seq = _intent(log)
    with pytest.raises(AuditError, match="needs a reason"):
        log.outcome(intent_seq=seq, outcome="failed", status=500, reason=None)


def test_pending_intents_are_those_without_outcome(open_log: Opener) -> None:
    log = open_log()
    done, open_one, other = _intent(log, 1), _intent(log, 2), _intent(log, 3)
    log.outcome(intent_seq=done, outcome="already_absent", status=404, reason=None)
    pending = log.pending_intents()
    assert [(i.seq, i.session_id) for i in pending] == [(open_one, 2), (other, 3)]
    assert pending[0].policy_hash == "c" * 64


def test_naive_clock_is_refused(open_log: Opener) -> None:
    log = open_log(clock=lambda: datetime(2026, 1, 1))
    with pytest.raises(AuditError, match="naive"):
        log.run_started(run_id="r", trigger="manual", settings_summary={})
    assert log.head().rows == 0


CHILD_INTENT_THEN_KILLED = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from retention.audit import AuditLog
log = AuditLog.open(Path(sys.argv[1]), subject_mode="omit", clock=lambda: datetime.now(UTC))
seq = log.intent(run_id="r", plan_id="p", policy="p", policy_hash="h", action="delete_session",
    organizer_key=1, meeting_id=2, session_id=3, subject=None, start_time=None, end_time=None,
    recording_ids=[], recording_bytes=None, attendee_count=None)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.e2e
def test_intent_is_durable_when_the_call_returns_even_if_the_process_is_killed(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    child = subprocess.run(
        [sys.executable, "-c", CHILD_INTENT_THEN_KILLED, str(db_path)], check=False, cwd=REPO
    )
    assert child.returncode == -9
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT seq, event, session_id FROM events").fetchall() == [
        (1, "intent", "3")
    ]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    conn.close()


CHILD_WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from retention.audit import AuditLog
log = AuditLog.open(Path(sys.argv[1]), subject_mode="omit", clock=lambda: datetime.now(UTC))
print("ready", flush=True)
sys.stdin.readline()
for number in range(int(sys.argv[3])):
    log.run_started(run_id=sys.argv[2], trigger=str(number), settings_summary={})
"""


@pytest.mark.e2e
def test_two_processes_appending_at_once_keep_one_unbroken_chain(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD_WRITER, str(db_path), name, "150"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for name in ("writer-a", "writer-b")
    ]
    for writer in writers:
        assert writer.stdout is not None
        assert writer.stdout.readline() == "ready\n"
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.close()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    for writer in writers:
        assert writer.stdout is not None
        writer.stdout.close()
    report = verify_log(db_path)
    assert report.clean, report.findings
    assert report.rows == 300
    conn = sqlite3.connect(db_path)
    runs = dict(conn.execute("SELECT run, count(*) FROM events GROUP BY run").fetchall())
    conn.close()
    assert runs == {"writer-a": 150, "writer-b": 150}


def test_open_refuses_a_log_whose_triggers_were_dropped(open_log: Opener, db_path: Path) -> None:
    open_log().run_started(run_id="r", trigger="manual", settings_summary={})
    conn = sqlite3.connect(db_path)
    conn.execute("DROP TRIGGER events_no_update")
    conn.close()
    with pytest.raises(AuditError, match="trigger events_no_update is missing"):
        open_log()


def test_checkpoint_is_a_signed_row_a_file_line_and_a_log_line(
    open_log: Opener, db_path: Path, signing_key: Ed25519PrivateKey, write_run: RunWriter
) -> None:
    log = open_log()
    write_run(log)
    with capture_logs() as logs:
        sealed = log.checkpoint()
    line = json.loads(log.checkpoint_path.read_text().splitlines()[-1])
    assert line["rows"] == 12
    assert line["seq"] == 13
    conn = sqlite3.connect(db_path)
    row = conn.execute("SELECT hash FROM events WHERE seq = 12").fetchone()[0]
    stored = json.loads(conn.execute("SELECT data FROM events WHERE seq = 13").fetchone()[0])
    conn.close()
    assert line["head"] == row == sealed.head
    assert stored["signature"] == line["signature"]
    message = json.dumps(
        {"head": row, "log_id": line["log_id"], "rows": 12, "time": line["time"]},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    signing_key.public_key().verify(base64.b64decode(line["signature"]), message)
    assert [(e["event"], e["rows"], e["head"]) for e in logs] == [("audit_checkpoint", 12, row)]


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    public_path, public = generate_key_pair(tmp_path / "audit.key")
    assert os.stat(tmp_path / "audit.key").st_mode & 0o777 == 0o600
    loaded = serialization.load_pem_public_key(public_path.read_bytes())
    assert loaded == public
    key = load_signing_key(tmp_path / "audit.key")
    assert key.public_key() == public
    assert load_signing_key((tmp_path / "audit.key").read_text()).public_key() == public
    with pytest.raises(AuditInputError, match="refusing to overwrite"):
        generate_key_pair(tmp_path / "audit.key")


def test_a_key_that_is_not_ed25519_is_refused_without_echoing_it(tmp_path: Path) -> None:
    text = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n"
    with pytest.raises(AuditInputError) as caught:
        load_signing_key(text)
    assert "bm90IGEga2V5" not in str(caught.value)
    assert "keygen" in (caught.value.hint or "")
    with pytest.raises(AuditInputError, match="cannot read the signing key"):
        load_signing_key(tmp_path / "missing.pem")


def test_repr_names_no_key_material(open_log: Opener, signing_key: Ed25519PrivateKey) -> None:
    raw = signing_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert raw.hex() not in repr(open_log())
