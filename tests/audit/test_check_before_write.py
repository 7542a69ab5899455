"""The service checks its record before it writes: each attack is refused and nothing changes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlite_utils import Database

from retention.audit import AuditLog
from retention.audit.head import WrittenHead, last_head
from retention.audit.preflight import AuditUnverified, check_record, verify_before_write
from retention.audit.store import COLUMNS, GENESIS_HASH, TRIGGERS, canonical_json, row_hash
from retention.settings import Settings

Opener = Callable[..., AuditLog]
RunWriter = Callable[..., list[int]]


@pytest.fixture
def state(db_path: Path) -> Database:
    db_path.parent.mkdir(parents=True, exist_ok=True)
    return Database(db_path.parent / "state.db")


@pytest.fixture
def sealed_twice(
    open_log: Opener, write_run: RunWriter, db_path: Path, state: Database
) -> WrittenHead:
    """Two runs (26 rows), each sealed twice; the service's own seals are remembered."""
    log = open_log()
    write_run(log, run_id="run-1")
    log.checkpoint(state=state)
    write_run(log, run_id="run-2")
    log.checkpoint(state=state)
    log.close()
    head = last_head(state)
    assert head is not None
    return head


def _files(db_path: Path) -> tuple[int, bytes]:
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    return rows, (db_path.parent / "audit-checkpoints.jsonl").read_bytes()


def _check(
    db_path: Path, key: Ed25519PrivateKey | None, head: WrittenHead | None, **extra: Any
) -> Any:
    return verify_before_write(
        db_path,
        db_path.parent / "audit-checkpoints.jsonl",
        signing_key=key,
        last_head=head,
        **extra,
    )


def _refused(
    db_path: Path, key: Ed25519PrivateKey | None, head: WrittenHead | None, **extra: Any
) -> AuditUnverified:
    before = _files(db_path)
    with pytest.raises(AuditUnverified) as caught:
        _check(db_path, key, head, **extra)
    assert _files(db_path) == before, "the check wrote something"
    assert caught.value.exit_code == 1
    assert caught.value.reason == "audit_unverified"
    return caught.value


def _tamper(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for name in ("events_no_update", "events_no_delete", "events_chain"):
        conn.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        conn.execute(statement)
    for name in ("events_no_update", "events_no_delete", "events_chain"):
        conn.execute(TRIGGERS[name])
    conn.close()


def test_a_clean_record_passes_from_its_last_signed_checkpoint(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    checked = _check(db_path, signing_key, sealed_twice)
    assert checked.anchor_rows == sealed_twice.rows
    assert checked.rows_checked == 1  # the checkpoint row after the anchor
    assert _check(db_path, None, sealed_twice).anchor_rows == sealed_twice.rows
    assert _check(db_path, signing_key, sealed_twice, full=True).rows_checked == 26


def test_a_row_edited_without_rehashing_is_refused(
    sealed_twice: WrittenHead,
    open_log: Opener,
    db_path: Path,
    signing_key: Ed25519PrivateKey,
    state: Database,
) -> None:
    log = open_log()
    log.run_started(run_id="run-3", trigger="schedule", settings_summary={})
    log.close()  # a run that stopped before its checkpoint
    _tamper(db_path, "UPDATE events SET run = 'run-x' WHERE seq = 27")
    assert _refused(db_path, signing_key, sealed_twice).finding == "bad_hash"
    # An edit under the last checkpoint leaves the stored hashes alone: the full pass sees it.
    _tamper(db_path, "UPDATE events SET run = 'run-3' WHERE seq = 27")
    _tamper(db_path, "UPDATE events SET session_id = 7999 WHERE seq = 8")
    _check(db_path, signing_key, sealed_twice)
    assert _refused(db_path, signing_key, sealed_twice, full=True).finding == "bad_hash"


def _forge(db_path: Path, drop_session: int) -> list[dict[str, Any]]:
    """Erase one session's intent and outcome, rehash everything, reseal unsigned."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    rows = [dict(row) for row in conn.execute("SELECT * FROM events ORDER BY seq")]
    log_id = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()[0]
    conn.close()
    kept, renumbered, lines = [], {}, []
    previous = GENESIS_HASH
    for row in rows:
        if str(row["session_id"]) == str(drop_session):
            continue
        renumbered[row["seq"]] = len(kept) + 1
        row["seq"] = len(kept) + 1
        if row["intent_seq"] is not None:
            row["intent_seq"] = renumbered[row["intent_seq"]]
        if row["event"] == "checkpoint":
            payload = json.loads(row["data"])
            payload.update(rows=row["seq"] - 1, head=previous, signature=None, key_id=None)
            row["data"] = canonical_json(payload).decode()
            lines.append({**payload, "seq": row["seq"]})
        row["prev_hash"] = previous
        row["hash"] = previous = row_hash(previous, row)
        kept.append(row)
    marks = ", ".join("?" * len(COLUMNS))
    conn = sqlite3.connect(db_path, isolation_level=None)
    for name in ("events_no_update", "events_no_delete", "events_chain"):
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM events")
    conn.executemany(
        f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})",
        [[row[column] for column in COLUMNS] for row in kept],
    )
    for name in ("events_no_update", "events_no_delete", "events_chain"):
        conn.execute(TRIGGERS[name])
    conn.close()
    assert all(line["log_id"] == log_id for line in lines)
    return lines


def test_a_consistent_rewrite_is_refused_before_the_service_signs_it(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    lines = _forge(db_path, drop_session=7001)
    checkpoint_file = db_path.parent / "audit-checkpoints.jsonl"
    checkpoint_file.write_bytes(b"".join(canonical_json(line) + b"\n" for line in lines))
    # With the key: the file no longer holds the signed checkpoints the service wrote.
    assert _refused(db_path, signing_key, sealed_twice).finding in {
        "external_checkpoint",
        "checkpoint_unsigned",
    }
    # Without a key: the head the service last sealed is not the forged one.
    assert _refused(db_path, None, sealed_twice).finding == "external_checkpoint"


def test_a_stripped_signature_after_a_signed_checkpoint_is_refused(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    checkpoint_file = db_path.parent / "audit-checkpoints.jsonl"
    *earlier, last = checkpoint_file.read_text().splitlines()
    stripped = {**json.loads(last), "signature": None, "key_id": None}
    checkpoint_file.write_text("\n".join([*earlier, json.dumps(stripped)]) + "\n")
    assert _refused(db_path, signing_key, sealed_twice).finding == "checkpoint_unsigned"


def test_a_deleted_record_is_refused_while_anything_names_its_log(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    checkpoint_file = db_path.parent / "audit-checkpoints.jsonl"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    before = checkpoint_file.read_bytes()
    with pytest.raises(AuditUnverified, match=sealed_twice.log_id) as caught:
        _check(db_path, signing_key, None)
    assert caught.value.finding == "missing_log"
    assert checkpoint_file.read_bytes() == before
    checkpoint_file.unlink()
    with pytest.raises(AuditUnverified, match=sealed_twice.log_id):
        _check(db_path, signing_key, sealed_twice)
    assert not db_path.exists(), "the check created a record"
    assert _check(db_path, signing_key, None).log_id is None  # a first start: nothing named


def test_a_replaced_record_is_refused(
    sealed_twice: WrittenHead, db_path: Path, open_log: Opener, signing_key: Ed25519PrivateKey
) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    (db_path.parent / "audit-checkpoints.jsonl").unlink()
    open_log().close()
    (db_path.parent / "audit-checkpoints.jsonl").write_text("")
    assert _refused(db_path, signing_key, sealed_twice).finding == "replaced_log"


def test_a_garbage_checkpoint_line_is_refused(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    with (db_path.parent / "audit-checkpoints.jsonl").open("a") as handle:
        handle.write("{garbage\n")
    refusal = _refused(db_path, signing_key, sealed_twice)
    assert refusal.finding == "checkpoint_malformed"
    assert "audit-checkpoints.jsonl:5: not a checkpoint line" in refusal.message


def test_a_truncated_record_is_refused(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    _tamper(db_path, "DELETE FROM events WHERE seq > 20")
    assert _refused(db_path, signing_key, sealed_twice).finding == "truncated"


def test_a_signature_by_an_unknown_key_is_refused_unless_that_key_is_trusted(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    rotated = Ed25519PrivateKey.generate()
    assert _refused(db_path, rotated, sealed_twice).finding == "checkpoint_signature"
    # After a rotation the earlier key is trusted, and the checkpoints it signed verify.
    _check(db_path, rotated, sealed_twice, trusted_keys=[signing_key.public_key()])


def test_the_runs_check_reads_its_inputs_from_the_settings(
    sealed_twice: WrittenHead,
    db_path: Path,
    signing_key: Ed25519PrivateKey,
    state: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("RETENTION_SIGNING_KEY", "RETENTION_TRUSTED_KEYS", "RETENTION_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    pem = signing_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    settings = Settings(state_dir=db_path.parent, signing_key=SecretStr(pem))
    assert check_record(settings, state).anchor_rows == sealed_twice.rows
    rotated = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(AuditUnverified):
        check_record(
            Settings(state_dir=db_path.parent, signing_key=SecretStr(rotated.decode())), state
        )
    folder = db_path.parent.parent / "keys"
    folder.mkdir()
    (folder / "2026.pub").write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    trusted = Settings(
        state_dir=db_path.parent, signing_key=SecretStr(rotated.decode()), trusted_keys=str(folder)
    )
    assert check_record(trusted, state).anchor_rows == sealed_twice.rows


def test_the_witness_copy_shows_a_consistent_rewrite_that_was_then_signed(
    sealed_twice: WrittenHead,
    db_path: Path,
    open_log: Opener,
    run_cli: Callable[..., Any],
    tmp_path: Path,
) -> None:
    checkpoint_file = db_path.parent / "audit-checkpoints.jsonl"
    witness_copy = tmp_path / "witness.jsonl"
    witness_copy.write_bytes(checkpoint_file.read_bytes())
    lines = _forge(db_path, drop_session=7001)
    checkpoint_file.write_bytes(b"".join(canonical_json(line) + b"\n" for line in lines))
    # A service that did not check would now sign the forged head.
    log = open_log()
    log.checkpoint()
    log.close()
    forged = json.loads(run_cli("verify", "--format", "json").output)
    sealing = {"external_checkpoint", "truncated", "checkpoint_mismatch", "checkpoint_unsigned"}
    sealing |= {"checkpoint_signature", "bad_hash", "broken_link", "gap"}
    # The host's own files agree with each other: only the witness can tell.
    assert not {f["code"] for f in forged["findings"]} & sealing
    result = run_cli("verify", "--format", "json", "--checkpoint", str(witness_copy))
    assert result.exit_code == 1
    found = json.loads(result.output)
    assert "external_checkpoint" in {f["code"] for f in found["findings"]}
    assert found["rows"] == forged["rows"] == 23  # 26, less 2 intents and 2 outcomes, +1


def test_verify_names_a_record_replaced_behind_the_services_back(
    sealed_twice: WrittenHead, db_path: Path, open_log: Opener, run_cli: Callable[..., Any]
) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    (db_path.parent / "audit-checkpoints.jsonl").unlink()
    open_log().close()  # a fresh, empty record where the old one was
    result = run_cli("verify", "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.output)["findings"]
    assert [f["code"] for f in findings] == ["state_head"]
    assert sealed_twice.log_id in findings[0]["message"]


def test_a_record_that_is_not_a_database_is_refused_as_unverified(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    db_path.write_bytes(b"not a database " * 100)
    with pytest.raises(AuditUnverified) as caught:
        _check(db_path, signing_key, sealed_twice)
    assert caught.value.finding == "unreadable"
    assert caught.value.exit_code == 1


def test_a_record_whose_seals_are_all_gone_is_refused_not_trusted_from_its_first_row(
    sealed_twice: WrittenHead, db_path: Path, signing_key: Ed25519PrivateKey, state: Database
) -> None:
    # Both places that vouch for the record emptied: the checkpoint file and the state's heads.
    (db_path.parent / "audit-checkpoints.jsonl").write_text("")
    state.execute("DELETE FROM audit_heads")
    state.conn.commit()

    refused = _refused(db_path, signing_key, last_head(state))

    assert refused.finding == "missing_checkpoints"
    assert "neither the checkpoint file nor the state database" in refused.message


def test_a_first_run_stopped_before_its_seal_still_passes(
    open_log: Opener, db_path: Path, signing_key: Ed25519PrivateKey
) -> None:
    log = open_log()
    log.run_started(run_id="run-1", trigger="manual", settings_summary={})
    log.run_finished(run_id="run-1", counts={}, result="success")
    log.close()  # killed after run_finished, before the checkpoint that follows it

    checked = _check(db_path, signing_key, None)

    assert checked.anchor_rows == 0
