"""Audit test fixtures: a stepping clock, a log in tmp_path, a full run, an auditor's recipe."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import retention.cli.audit  # noqa: F401  (registers the audit commands on the root group)
from retention.audit import AuditLog
from retention.cli.app import cli

START = datetime(2026, 3, 30, 3, 0, tzinfo=UTC)
POLICY_TEXT = "policies:\n  - name: recordings-90d\n    action: delete_recordings\n    after: 90d\n"
HOLDS_TEXT = "holds:\n  - {id: LIT-7, reason: Acme litigation, sessions: [9001]}\n"


class SteppingClock:
    """A clock that advances one second per reading, starting at a fixed time."""

    def __init__(self, start: datetime = START, step: timedelta = timedelta(seconds=1)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit.db"


@pytest.fixture
def open_log(
    db_path: Path, clock: SteppingClock, signing_key: Ed25519PrivateKey
) -> Iterator[Callable[..., AuditLog]]:
    """Open the test log (signed, hashing subjects unless told otherwise); closes them all."""
    opened: list[AuditLog] = []

    def opener(**overrides: Any) -> AuditLog:
        options: dict[str, Any] = {
            "subject_mode": "hash",
            "signing_key": signing_key,
            "clock": clock,
        }
        options.update(overrides)
        log = AuditLog.open(db_path, **options)
        opened.append(log)
        return log

    yield opener
    for log in opened:
        log.close()


def _write_run(log: AuditLog, run_id: str = "run-1", sessions: int = 3) -> list[int]:
    """A complete run: start, policies, approval, intents with outcomes, a hold, finish."""
    log.run_started(run_id=run_id, trigger="schedule", settings_summary={"rate_limit": 10})
    log.policy_loaded(
        run_id=run_id,
        files=[
            (
                "policies/recordings.yaml",
                hashlib.sha256(POLICY_TEXT.encode()).hexdigest(),
                POLICY_TEXT,
            ),
            ("policies/holds.yaml", hashlib.sha256(HOLDS_TEXT.encode()).hexdigest(), HOLDS_TEXT),
        ],
        policies=[("recordings-90d", "c" * 64)],
        holds=[("LIT-7", "Acme litigation", None)],
    )
    log.plan_approved(run_id=run_id, plan_id="plan-1", plan_hash="d" * 64, approved_by="--yes")
    intents = []
    for number in range(sessions):
        seq = log.intent(
            run_id=run_id,
            plan_id="plan-1",
            policy="recordings-90d",
            policy_hash="c" * 64,
            action="delete_recordings",
            organizer_key=100 + number % 2,
            meeting_id=5000 + number,
            session_id=7000 + number,
            subject=f"Quarterly board review {number}",
            start_time=START - timedelta(days=120 + number),
            end_time=START - timedelta(days=120 + number, minutes=-45),
            recording_ids=[f"rec-{number}"],
            recording_bytes=1_000_000 * (number + 1),
            attendee_count=4,
        )
        log.outcome(intent_seq=seq, outcome="deleted", status=204, reason=None)
        intents.append(seq)
    log.hold_blocked(
        run_id=run_id, hold_id="LIT-7", sessions=[9001], actions={"delete_recordings": 1}
    )
    log.run_finished(run_id=run_id, counts={"deleted": sessions}, result="ok")
    log.checkpoint()
    return intents


def _auditor_hashes(path: Path) -> list[tuple[int, str, str]]:
    """The documented recipe, written independently: (seq, recomputed hash, stored hash)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    found = []
    for row in conn.execute("SELECT * FROM events ORDER BY seq"):
        fields = dict(row)
        stored = fields.pop("hash")
        body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(bytes.fromhex(fields["prev_hash"]) + body.encode("utf-8"))
        found.append((fields["seq"], digest.hexdigest(), stored))
    conn.close()
    return found


@pytest.fixture
def write_run() -> Callable[..., list[int]]:
    """Writes a complete run into a log; returns the intents' seqs."""
    return _write_run


@pytest.fixture
def auditor_hashes() -> Callable[[Path], list[tuple[int, str, str]]]:
    """The auditor's independent recomputation of every row's hash."""
    return _auditor_hashes


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, db_path: Path) -> Callable[..., Any]:
    """Invoke `retention audit …` in-process with the state directory of the test log."""
    monkeypatch.setenv("RETENTION_STATE_DIR", str(db_path.parent))
    for name in ("RETENTION_SIGNING_KEY", "RETENTION_CONFIG", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str) -> Any:
        return CliRunner().invoke(cli, ["audit", *args], catch_exceptions=False)

    return invoke
