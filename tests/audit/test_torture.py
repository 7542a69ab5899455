"""A million-row log verifies clean, and one edited row among them is still named."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from retention.audit import AuditLog, verify_log

ROWS = 1_000_000


def _build(path: Path, count: int) -> None:
    """Rows written by the documented recipe, independently of the writer, in one transaction."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    previous = "0" * 64
    for seq in range(1, count + 1):
        row = {
            "seq": seq,
            "time": "2026-01-01T00:00:00.000000Z",
            "event": "run_started",
            "run": "bulk",
            "plan": None,
            "policy": None,
            "action": None,
            "organizer_key": None,
            "meeting_id": None,
            "session_id": None,
            "intent_seq": None,
            "outcome": None,
            "data": '{"settings":{},"trigger":"' + str(seq) + '"}',
            "prev_hash": previous,
        }
        body = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        previous = hashlib.sha256(bytes.fromhex(previous) + body.encode()).hexdigest()
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [*row.values(), previous],
        )
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.torture
def test_a_million_rows_verify_clean_and_one_edit_is_named(
    open_log: Callable[..., AuditLog], db_path: Path
) -> None:
    open_log(subject_mode="omit").close()
    _build(db_path, ROWS)
    report = verify_log(db_path)
    assert report.clean, report.findings[:5]
    assert report.rows == ROWS
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET run = 'bulk!' WHERE seq = 765432")
    conn.close()
    report = verify_log(db_path)
    assert [(f.code, f.seq) for f in report.findings if f.code == "bad_hash"] == [
        ("bad_hash", 765432)
    ]
