"""Every way of altering the record is refused, or detected and named by `audit verify`."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import invoke_retention

from retention.audit import AuditLog
from retention.audit.store import TRIGGERS

Opener = Callable[..., AuditLog]
RunWriter = Callable[..., list[int]]
Cli = Callable[..., Any]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def written(open_log: Opener, write_run: RunWriter, db_path: Path) -> Path:
    """A closed log of one complete run (12 rows, checkpoint at row 12 covering 11)."""
    log = open_log()
    write_run(log)
    log.close()
    return db_path


@pytest.fixture
def public_key(tmp_path: Path, signing_key: Ed25519PrivateKey) -> Path:
    path = tmp_path / "audit.pub"
    path.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def tamper(path: Path, *statements: str, restore_triggers: bool = True) -> None:
    """Drop the append-only triggers, run the edits, and (to hide it) put the triggers back."""
    conn = sqlite3.connect(path, isolation_level=None)
    for name in ("events_no_update", "events_no_delete", "events_chain"):
        conn.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        conn.execute(statement)
    if restore_triggers:
        for name in ("events_no_update", "events_no_delete", "events_chain"):
            conn.execute(TRIGGERS[name])
    conn.close()


def verify_json(run_cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("verify", "--format", "json", *args)
    return result.exit_code, json.loads(result.output)


def codes(report: dict[str, Any]) -> list[tuple[str, int | None]]:
    return [(finding["code"], finding["seq"]) for finding in report["findings"]]


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("UPDATE events SET run = 'other' WHERE seq = 4", "UPDATE refused"),
        ("DELETE FROM events WHERE seq = 12", "DELETE refused"),
        ("INSERT OR REPLACE INTO events SELECT * FROM events WHERE seq = 4", "next sequence"),
        (
            "INSERT INTO events SELECT * FROM events WHERE seq = 4"
            " ON CONFLICT (seq) DO UPDATE SET run = 'other'",
            "next sequence",
        ),
        (
            "INSERT INTO events (seq, time, event, data, prev_hash, hash)"
            " SELECT 14, time, event, data, hash, hash FROM events WHERE seq = 12",
            "next sequence",
        ),
        (
            "INSERT INTO events (seq, time, event, data, prev_hash, hash)"
            " SELECT 13, time, event, data, prev_hash, hash FROM events WHERE seq = 12",
            "prev_hash must be the hash of the last row",
        ),
        ("UPDATE meta SET value = '00' WHERE key = 'subject_salt'", "immutable"),
    ],
    ids=["update", "delete", "insert-or-replace", "upsert", "gap", "fork", "meta"],
)
def test_triggers_refuse_every_rewrite(written: Path, statement: str, message: str) -> None:
    conn = sqlite3.connect(written)
    with pytest.raises(sqlite3.IntegrityError, match=message):
        conn.execute(statement)
    conn.close()


def test_clean_log_verifies_with_exit_0(written: Path, run_cli: Cli, public_key: Path) -> None:
    exit_code, report = verify_json(run_cli, "--public-key", str(public_key))
    assert exit_code == 0, report["findings"]
    assert report["clean"] is True
    assert report["rows"] == 12
    assert report["checkpoints"] == {"total": 1, "valid": 1, "invalid": 0, "unsigned": 0}
    assert report["external_checkpoints"] == 1


def test_dropped_triggers_are_named(written: Path, run_cli: Cli) -> None:
    tamper(written, restore_triggers=False)
    result = run_cli("verify")
    assert result.exit_code == 1
    for name in ("events_no_update", "events_no_delete", "events_chain"):
        assert f"trigger {name} is missing" in result.output


def test_one_edited_value_is_named_as_the_first_bad_row(written: Path, run_cli: Cli) -> None:
    tamper(written, "UPDATE events SET session_id = 7999 WHERE seq = 4")
    exit_code, report = verify_json(run_cli)
    assert exit_code == 1
    assert codes(report) == [("bad_hash", 4)]
    assert report["first_bad_row"]["found"] == _stored_hash(written, 4)


def test_one_byte_edited_in_the_file_is_detected(written: Path) -> None:
    content = written.read_bytes()
    assert content.count(b'"rate_limit":10') == 1
    written.write_bytes(content.replace(b'"rate_limit":10', b'"rate_limit":19'))
    result = invoke_retention(
        "audit",
        "verify",
        "--db",
        str(written),
    )
    assert result.returncode == 1
    assert "First bad row: 1: row 1: stored hash does not match its contents" in result.stdout


def test_a_deleted_middle_row_is_a_gap_and_a_broken_link(written: Path, run_cli: Cli) -> None:
    tamper(written, "DELETE FROM events WHERE seq = 6")
    exit_code, report = verify_json(run_cli)
    assert exit_code == 1
    # Row 6 was an intent: its outcome (row 7) now names nothing.
    assert codes(report) == [("gap", 6), ("broken_link", 7), ("orphan_outcome", 7)]


def test_reordered_rows_are_named(written: Path, run_cli: Cli) -> None:
    tamper(
        written,
        "UPDATE events SET seq = -5 WHERE seq = 5",
        "UPDATE events SET seq = 5 WHERE seq = 6",
        "UPDATE events SET seq = 6 WHERE seq = -5",
    )
    exit_code, report = verify_json(run_cli)
    assert exit_code == 1
    assert codes(report) == [
        ("broken_link", 5),
        ("bad_hash", 5),
        ("broken_link", 6),
        ("bad_hash", 6),
        ("broken_link", 7),
        # The intent now sits at row 5, before any outcome, and row 7 names row 6, an outcome.
        ("pending_intent", 5),
        ("orphan_outcome", 7),
    ]


def test_a_truncated_tail_is_caught_by_the_external_checkpoint(written: Path, run_cli: Cli) -> None:
    tamper(written, "DELETE FROM events WHERE seq > 9")
    exit_code, report = verify_json(run_cli)
    assert exit_code == 1
    assert [code for code, _ in codes(report)] == ["truncated"]
    assert "covers 11 rows but the log has 9" in report["findings"][0]["message"]


def test_a_chain_rebuilt_without_the_key_fails_the_signatures(
    written: Path, run_cli: Cli, public_key: Path
) -> None:
    """The forger rewrites a row and every hash after it, and updates the checkpoint row."""
    conn = sqlite3.connect(written, isolation_level=None)
    conn.row_factory = sqlite3.Row
    rows = [dict(row) for row in conn.execute("SELECT * FROM events ORDER BY seq")]
    conn.close()
    rows[3]["session_id"] = 7999
    previous = "0" * 64
    for row in rows:
        row["prev_hash"] = previous
        if row["event"] == "checkpoint":
            data = json.loads(row["data"])
            data["head"] = previous
            row["data"] = json.dumps(data, sort_keys=True, separators=(",", ":"))
        body = {key: value for key, value in row.items() if key != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        row["hash"] = hashlib.sha256(bytes.fromhex(previous) + text.encode()).hexdigest()
        previous = row["hash"]
    statements = ["DELETE FROM events"] + [
        "INSERT INTO events ({}) VALUES ({})".format(
            ", ".join(row), ", ".join(_literal(value) for value in row.values())
        )
        for row in rows
    ]
    tamper(written, *statements)
    exit_code, report = verify_json(run_cli, "--public-key", str(public_key))
    assert exit_code == 1
    assert report["valid_rows"] == 12
    assert codes(report) == [("checkpoint_signature", 12), ("external_checkpoint", 11)]
    # Without the public key, the external checkpoint alone still catches it.
    exit_code, report = verify_json(run_cli)
    assert codes(report) == [("external_checkpoint", 11)]


def test_an_older_copy_restored_is_detected(
    db_path: Path, open_log: Opener, write_run: RunWriter, run_cli: Cli, tmp_path: Path
) -> None:
    log = open_log()
    write_run(log, "run-1")
    log.close()
    shutil.copy(db_path, tmp_path / "old.db")
    log = open_log()
    write_run(log, "run-2")
    log.close()
    shutil.copy(tmp_path / "old.db", db_path)
    exit_code, report = verify_json(run_cli)
    assert exit_code == 1
    assert [code for code, _ in codes(report)] == ["truncated"]
    assert "older copy restored" in report["findings"][0]["message"]


def test_an_intent_without_outcome_and_a_double_deletion_are_reported(
    open_log: Opener, run_cli: Cli
) -> None:
    log = open_log()
    arguments: dict[str, Any] = {
        "run_id": "r",
        "plan_id": "p",
        "policy": "p",
        "policy_hash": "h",
        "action": "delete_session",
        "organizer_key": 1,
        "meeting_id": 2,
        "session_id": 3,
        "subject": None,
        "start_time": None,
        "end_time": None,
        "recording_ids": [],
        "recording_bytes": None,
        "attendee_count": None,
    }
    for _ in range(2):
        log.outcome(intent_seq=log.intent(**arguments), outcome="deleted", status=204, reason=None)
    pending = log.intent(**arguments)
    exit_code, report = verify_json(run_cli)
    assert exit_code == 1
    assert codes(report) == [("pending_intent", pending), ("deleted_twice", None)]
    assert report["pending_intents"] == [pending]


def test_bad_checkpoint_lines_are_findings_and_the_rest_is_still_checked(
    written: Path, run_cli: Cli, tmp_path: Path
) -> None:
    good = (written.parent / "audit-checkpoints.jsonl").read_text()
    bad_lines = tmp_path / "checkpoints.jsonl"
    bad_lines.write_text('{"rows": 1}\nnot json\n' + good)
    exit_code, report = verify_json(run_cli, "--checkpoint", str(bad_lines))
    assert exit_code == 1
    malformed = [f for f in report["findings"] if f["code"] == "checkpoint_malformed"]
    assert [f["line"] for f in malformed] == [1, 2]
    assert f"{bad_lines}:1: not a checkpoint line" in malformed[0]["message"]
    assert report["external_checkpoints"] == 1
    assert report["rows"] == 12
    assert {f["code"] for f in report["findings"]} == {"checkpoint_malformed"}


def test_unreadable_inputs_exit_2_naming_the_file(
    written: Path, run_cli: Cli, tmp_path: Path
) -> None:
    result = run_cli("verify", "--checkpoint", str(tmp_path / "absent.jsonl"))
    assert result.exit_code == 2
    assert "cannot read the checkpoint file" in result.output
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello " * 1000)
    result = run_cli("verify", "--db", str(not_a_db))
    assert result.exit_code == 2
    assert "is not a readable SQLite database" in result.output
    result = run_cli("verify", "--db", str(tmp_path / "missing.db"))
    assert result.exit_code == 2
    assert "no audit record at" in result.output


def _stored_hash(path: Path, seq: int) -> str:
    conn = sqlite3.connect(path)
    found = conn.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchone()[0]
    conn.close()
    return str(found)


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def test_a_log_of_finished_runs_without_any_checkpoint_is_not_signed(
    open_log: Opener, db_path: Path, run_cli: Cli, public_key: Path
) -> None:
    # What a rewrite that dropped every checkpoint row (and the checkpoint file) leaves.
    log = open_log()
    for run in ("run-1", "run-2"):
        log.run_started(run_id=run, trigger="manual", settings_summary={})
        log.run_finished(run_id=run, counts={}, result="success")
    log.close()

    code, report = verify_json(run_cli, "--public-key", str(public_key))

    assert code == 1
    assert ("checkpoint_unsigned", None) in codes(report)
