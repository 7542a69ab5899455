"""The executor in-process: an in-memory account, a real audit record in tmp_path."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import records
from fakeapi import POLICY, FakeAccount, item

from retention.audit import AuditLog
from retention.audit.store import connect_reader
from retention.engine.execute import SEND, CircuitBreaker, Executor, Verdict
from retention.engine.holds import HoldWatcher
from retention.engine.planitem import PlanItem
from retention.engine.records import SessionRecord

pytestmark = pytest.mark.anyio


def reader(audit_path: Path) -> sqlite3.Connection:
    return connect_reader(audit_path)


def committed(audit_path: Path, query: str) -> list[int]:
    """The one column `query` selects, as another connection reads it: committed, on disk."""
    conn = reader(audit_path)
    try:
        return [int(row[0]) for row in conn.execute(query).fetchall()]
    finally:
        conn.close()


def durable_intents(audit_path: Path) -> set[int]:
    """Sessions whose intent another connection can read: committed, on disk."""
    return set(committed(audit_path, "SELECT session_id FROM events WHERE event = 'intent'"))


def durable_outcomes(audit_path: Path) -> Counter[int]:
    """How many committed outcomes each intent has."""
    return Counter(committed(audit_path, "SELECT intent_seq FROM events WHERE event = 'outcome'"))


def executor(account: FakeAccount, audit: AuditLog, **options: object) -> Executor:
    return Executor(removals=account, audit=audit, run_id="run-1", plan_id="plan-1", **options)  # type: ignore[arg-type]


async def test_each_intent_is_durable_before_its_delete_and_ends_with_one_outcome(
    audit: AuditLog, tmp_path: Path
) -> None:
    account = FakeAccount.with_sessions(*range(1, 31))
    seen_durable: list[bool] = []
    account.before_send = lambda _action, session_id: seen_durable.append(
        session_id in durable_intents(tmp_path / "audit.db")
    )
    run = executor(account, audit, concurrency=4)

    report = await run.run([item(n) for n in range(1, 31)])
    run.close()

    assert len(seen_durable) == 30
    assert all(seen_durable), "every DELETE went out after its intent was committed"
    assert report.outcomes == Counter({"deleted": 30})
    assert report.ok
    outcomes = durable_outcomes(tmp_path / "audit.db")
    assert sorted(outcomes.values()) == [1] * 30
    assert audit.pending_intents() == []


async def test_outcomes_are_committed_when_the_run_returns(audit: AuditLog, tmp_path: Path) -> None:
    account = FakeAccount.with_sessions(1, 2, 3)
    run = executor(account, audit)

    await run.run([item(1), item(2), item(3)])

    assert sum(durable_outcomes(tmp_path / "audit.db").values()) == 3
    run.close()


async def test_the_breaker_halts_a_run_whose_deletes_mostly_answer_404(audit: AuditLog) -> None:
    account = FakeAccount()  # the wrong account: nothing planned exists there
    breaker = CircuitBreaker(window=10, threshold=0.5, min_calls=5)
    run = executor(account, audit, concurrency=1, breaker=breaker)

    report = await run.run([item(n) for n in range(1, 41)])
    run.close()

    assert report.halted is not None
    assert report.halted.startswith("circuit breaker")
    assert len(account.sent) == 5, "no DELETE after the breaker tripped"
    assert report.not_started == 35
    assert audit.pending_intents() == [], "the items it did start each have their outcome"


async def test_a_stop_lets_calls_in_flight_finish_and_starts_nothing_new(
    audit: AuditLog,
) -> None:
    account = FakeAccount.with_sessions(*range(1, 51))
    stop = asyncio.Event()

    def stop_at_the_fifth(_action: str, _session_id: int) -> None:
        if len(account.sent) == 5:
            stop.set()

    account.before_send = stop_at_the_fifth
    run = executor(account, audit, concurrency=3, stop=stop)

    report = await run.run([item(n) for n in range(1, 51)])
    run.close()

    assert len(account.sent) <= 7, "only the calls already under way after the stop"
    assert report.halted == "stopped by signal before every item was executed"
    assert report.not_started == 50 - len(account.sent)
    assert report.outcomes["deleted"] == len(account.sent)
    assert audit.pending_intents() == []


async def test_after_a_stop_a_hung_delete_gets_only_the_stop_grace_and_ends_failed(
    audit: AuditLog,
) -> None:
    account = FakeAccount.with_sessions(*range(1, 11))
    account.hung = asyncio.Event()
    account.hung.set()
    stop = asyncio.Event()
    run = executor(account, audit, concurrency=2, stop=stop, stop_grace=0.05)

    running = asyncio.create_task(run.run([item(n) for n in range(1, 11)]))
    while len(account.sent) < 2:
        await asyncio.sleep(0.01)
    stop.set()
    report = await asyncio.wait_for(running, timeout=5)
    run.close()

    assert len(account.sent) == 2, "nothing new after the stop"
    assert report.outcomes == Counter({"failed": 2})
    assert all("0.05 s stop grace" in failure for failure in report.failures)
    assert audit.pending_intents() == [], "each hung DELETE still ends with its outcome"


async def test_a_hold_placed_mid_run_skips_the_sessions_it_covers(
    audit: AuditLog, tmp_path: Path
) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "policies.yaml").write_text(POLICY)
    watcher = HoldWatcher(folder, lambda: datetime.now(UTC), on_invalid=lambda: None)
    account = FakeAccount.with_sessions(*range(1, 11))

    def hold_after_the_second(_action: str, _session_id: int) -> None:
        if len(account.sent) == 2:
            (folder / "holds.yaml").write_text(
                "holds:\n  - id: LATE\n    reason: Litigation.\n    sessions: [5, 6, 7]\n"
            )

    account.before_send = hold_after_the_second
    records = {n: _record(n) for n in range(1, 11)}
    run = executor(account, audit, concurrency=1, gate=watcher.gate(records.get))

    report = await run.run([item(n) for n in range(1, 11)])
    run.close()

    assert [session for _, session in account.sent] == [1, 2, 3, 4, 8, 9, 10]
    assert report.outcomes == Counter({"deleted": 7, "skipped_hold": 3})
    assert audit.pending_intents() == []


async def test_the_gate_decides_each_item_at_send_time_with_its_reason(
    audit: AuditLog, tmp_path: Path
) -> None:
    account = FakeAccount.with_sessions(1, 2, 3)

    def gate(planned: PlanItem) -> Verdict:
        if planned.session_id == 2:
            return Verdict("skipped_changed", "recording gone since the plan was made")
        return SEND

    run = executor(account, audit, gate=gate)
    report = await run.run([item(1), item(2), item(3)])
    run.close()

    assert account.sent == [("delete_session", 1), ("delete_session", 3)]
    assert report.outcomes == Counter({"deleted": 2, "skipped_changed": 1})
    conn = reader(tmp_path / "audit.db")
    reasons = conn.execute(
        "SELECT outcome, json_extract(data, '$.reason') FROM events"
        " WHERE event = 'outcome' AND outcome != 'deleted'"
    ).fetchall()
    conn.close()
    assert [tuple(row) for row in reasons] == [
        ("skipped_changed", "recording gone since the plan was made")
    ]


async def test_a_session_delete_makes_the_other_removals_of_that_session_moot(
    audit: AuditLog,
) -> None:
    account = FakeAccount.with_sessions(1)
    run = executor(account, audit)

    await run.run([item(1, "delete_recordings"), item(1), item(1, "delete_attendees")])
    run.close()

    assert account.sent == [("delete_session", 1)]


async def test_a_delete_without_an_answer_fails_and_has_its_window_read_again(
    audit: AuditLog,
) -> None:
    account = FakeAccount.with_sessions(1, 2)
    account.fail_with[2] = None
    again: list[int] = []
    run = executor(account, audit, read_again=lambda planned: again.append(planned.session_id))

    report = await run.run([item(1), item(2)])
    run.close()

    assert report.outcomes == Counter({"deleted": 1, "failed": 1})
    assert not report.ok
    assert again == [2]
    assert report.failures == [
        "delete_session session 2: - GoTo API DELETE /organizers/100/sessions/2 failed: no answer"
        " (failing on purpose)"
    ]


def _record(session_id: int) -> SessionRecord:
    return records.ended(
        session_id,
        at=datetime(2026, 3, 1, 11, 0, tzinfo=UTC),
        meeting_id=5000 + session_id,
        organizer_key=100,
        organizer_email="o@example.com",
        group_key=None,
        group_name=None,
        subject="Weekly",
        meeting_type="scheduled",
        recording_id=None,
        recording_bytes=None,
    )
