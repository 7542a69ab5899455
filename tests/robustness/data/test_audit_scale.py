"""Audit at scale: a large record of removals verifies clean through the CLI, and its export
streams: the exporting process's peak memory does not grow with the number of rows."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import REPO, invoke_retention

from retention.audit import AuditLog

GENESIS = "0" * 64
# Peak RSS may differ this much between exporting a small and a large log (allocator noise);
# a buffering export of 100,000 rows alone would take far more than this.
FLAT_MARGIN_KB = 24 * 1024


def build_log(path: Path, pairs: int) -> None:
    """`pairs` intent/outcome pairs, chained by the documented recipe, in one transaction.

    The empty log comes from the real writer (schema, triggers, metadata); the rows are made
    here, independently of it: sha256(previous hash bytes + canonical JSON of the row).
    """
    AuditLog.open(path, subject_mode="hash", clock=lambda: datetime.now(UTC)).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    previous = GENESIS
    seq = 0
    for number in range(pairs):
        common = {
            "run": "run-bulk",
            "plan": "plan-bulk",
            "policy": "sessions-90d",
            "action": "delete_session",
            "organizer_key": 1000 + number % 5000,
            "meeting_id": 100_000_000 + number // 3,
            "session_id": 900_000_000 + number,
        }
        intent_data = {
            "attendee_count": number % 40,
            "end_time": "2025-01-06T10:45:00.000000Z",
            "policy_hash": "c" * 64,
            "recording_bytes": None,
            "recording_ids": [],
            "start_time": "2025-01-06T10:00:00.000000Z",
            "subject": hashlib.sha256(str(number).encode()).hexdigest(),
            "subject_mode": "hash",
        }
        intent_seq = seq + 1
        for event, extra, data in (
            ("intent", {"intent_seq": None, "outcome": None}, intent_data),
            (
                "outcome",
                {"intent_seq": intent_seq, "outcome": "deleted"},
                {"reason": None, "status": 204},
            ),
        ):
            seq += 1
            row = {
                "seq": seq,
                "time": f"2026-01-01T00:00:00.{seq % 1_000_000:06d}Z",
                "event": event,
                **common,
                **extra,
                "data": json.dumps(data, sort_keys=True, separators=(",", ":")),
                "prev_hash": previous,
            }
            body = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            previous = hashlib.sha256(bytes.fromhex(previous) + body.encode()).hexdigest()
            conn.execute(
                "INSERT INTO events (seq, time, event, run, plan, policy, action, organizer_key,"
                " meeting_id, session_id, intent_seq, outcome, data, prev_hash, hash)"
                " VALUES (:seq, :time, :event, :run, :plan, :policy, :action, :organizer_key,"
                " :meeting_id, :session_id, :intent_seq, :outcome, :data, :prev_hash, :hash)",
                {**row, "hash": previous},
            )
    conn.execute("COMMIT")
    conn.close()


def retention(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    return invoke_retention(
        *args,
        env=env,
        timeout=1800,
    )


def export_peak_rss_kb(db: Path, out: Path) -> int:
    """Peak RSS (KB) of one `retention audit export --format jsonl` process, writing to `out`."""
    measure = (
        "import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    command = ("-c", measure, sys.executable, "-m", "retention", "audit", "export")
    result = subprocess.run(
        [sys.executable, *command, "--db", str(db), "--format", "jsonl", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip())


def check_scale(tmp_path: Path, pairs: int) -> tuple[int, int]:
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    build_log(small, 500)
    build_log(large, pairs)
    verify = retention("audit", "verify", "--db", str(large))
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"Rows: {2 * pairs:,} found, {2 * pairs:,} valid" in verify.stdout, verify.stdout
    small_rss = export_peak_rss_kb(small, tmp_path / "small.jsonl")
    large_rss = export_peak_rss_kb(large, tmp_path / "large.jsonl")
    with (tmp_path / "large.jsonl").open() as exported:
        lines = sum(1 for _ in exported)
    assert lines == 2 * pairs
    assert large_rss < small_rss + FLAT_MARGIN_KB, (small_rss, large_rss)
    return small_rss, large_rss


@pytest.mark.e2e
@pytest.mark.torture  # wall-clock heavy: `make torture`
def test_fifty_thousand_rows_verify_and_export_in_flat_memory(tmp_path: Path) -> None:
    check_scale(tmp_path, 25_000)


@pytest.mark.e2e
@pytest.mark.torture
@pytest.mark.timeout(1800)
def test_a_million_rows_verify_and_export_in_flat_memory(tmp_path: Path) -> None:
    small_rss, large_rss = check_scale(tmp_path, 500_000)
    small_mb, large_mb = small_rss / 1024, large_rss / 1024
    print(f"export peak RSS: 1,000 rows {small_mb:.0f} MB, 1,000,000 rows {large_mb:.0f} MB")
