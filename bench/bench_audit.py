"""Audit record: durable appends, the verify rate, and the check the service makes before writing.

`python -m bench bench_audit` appends 100,000 events through AuditLog (every call committed
with synchronous=FULL before it returns), verifies them, and times the check before write: the
rows since the last checkpoint, rehashed, per second (`--appends N` for another count).
`python -m bench bench_audit --verify-rows 1000000` also builds a 1,000,000-row log in one
transaction and verifies it.
"""

from __future__ import annotations

import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retention.audit import AuditLog, verify_log
from retention.audit.preflight import verify_before_write
from retention.audit.store import COLUMNS, GENESIS_HASH, canonical_json, row_hash

APPENDS = 100_000
START = datetime(2026, 1, 1, tzinfo=UTC)


def _clock() -> object:
    moments = iter(START + timedelta(milliseconds=n) for n in range(10**8))
    return lambda: next(moments)


def append_events(path: Path, count: int) -> float:
    """Half intents, half their outcomes, every one committed on its own; returns seconds."""
    log = AuditLog.open(path, subject_mode="hash", clock=_clock())  # type: ignore[arg-type]
    started = time.perf_counter()
    for number in range(count // 2):
        seq = log.intent(
            run_id="bench-run",
            plan_id="bench-plan",
            policy="recordings-90d",
            policy_hash="c" * 64,
            action="delete_recordings",
            organizer_key=1000 + number % 2000,
            meeting_id=200_000 + number,
            session_id=10_000_000 + number,
            subject="Weekly sync",
            start_time=START,
            end_time=START + timedelta(minutes=45),
            recording_ids=[f"rec-{number}"],
            recording_bytes=50_000_000,
            attendee_count=6,
        )
        log.outcome(intent_seq=seq, outcome="deleted", status=204, reason=None)
    elapsed = time.perf_counter() - started
    log.checkpoint()
    log.close()
    return elapsed


def build_bulk(path: Path, count: int) -> None:
    """A log of `count` rows written in one transaction (for the verify rate only)."""
    AuditLog.open(path, subject_mode="omit", clock=_clock()).close()  # type: ignore[arg-type]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    previous = GENESIS_HASH
    insert = f"INSERT INTO events VALUES ({', '.join('?' * len(COLUMNS))})"
    for seq in range(1, count + 1):
        row = dict.fromkeys(COLUMNS)
        row.update(
            seq=seq,
            time=f"2026-01-01T00:00:00.{seq % 1_000_000:06d}Z",
            event="run_started",
            run="bulk",
            data=canonical_json({"settings": {}, "trigger": str(seq)}).decode(),
            prev_hash=previous,
        )
        row["hash"] = previous = row_hash(previous, row)
        conn.execute(insert, [row[column] for column in COLUMNS])
    conn.execute("COMMIT")
    conn.close()


def report_verify(path: Path) -> None:
    report = verify_log(path)
    verdict = "clean" if report.clean else f"NOT clean: {report.findings[:3]}"
    print(
        f"verify:   {report.rows:,} rows in {report.seconds:.2f} s ="
        f" {report.rows / report.seconds:,.0f} rows/s ({verdict})"
    )


def report_preflight(path: Path) -> None:
    """The check before write: from the last checkpoint, and from row 0 (no checkpoint yet)."""
    checkpoints = path.parent / "audit-checkpoints.jsonl"
    for label, full in (("from the last checkpoint", False), ("from row 0", True)):
        checked = verify_before_write(path, checkpoints, full=full)
        rate = checked.rows_checked / checked.seconds if checked.seconds else 0.0
        shown = f" = {rate:,.0f} rows/s" if checked.rows_checked >= 1000 else ""
        print(
            f"preflight {label}: {checked.rows_checked:,} rows since the anchor in"
            f" {checked.seconds * 1000:,.1f} ms{shown}"
        )


def _number_after(arguments: list[str], flag: str, default: int) -> int:
    return int(arguments[arguments.index(flag) + 1]) if flag in arguments else default


def main() -> None:
    arguments = sys.argv[1:]
    bulk = _number_after(arguments, "--verify-rows", 0)
    appends = _number_after(arguments, "--appends", APPENDS)
    # On the state directory's disk, not a tmpfs: fsync must cost what it costs in production.
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".bench-audit-") as folder:
        path = Path(folder) / "audit.db"
        elapsed = append_events(path, appends)
        print(
            f"append:   {appends:,} events, each committed (WAL, synchronous=FULL), in"
            f" {elapsed:.1f} s = {appends / elapsed:,.0f} events/s"
        )
        report_verify(path)
        report_preflight(path)
        if bulk:
            bulk_path = Path(folder) / "bulk.db"
            started = time.perf_counter()
            build_bulk(bulk_path, bulk)
            print(f"bulk:     built {bulk:,} rows in {time.perf_counter() - started:.1f} s")
            report_verify(bulk_path)
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
