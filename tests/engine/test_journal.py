"""The executor's journal on a real audit file: group commit, outcomes riding with intents."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from records import intent_fields

from retention.audit import AuditLog
from retention.audit.store import AuditError
from retention.audit.verify import verify_log
from retention.engine.journal import Journal

pytestmark = pytest.mark.anyio


@pytest.fixture
def log(audit: AuditLog) -> AuditLog:
    return audit


def count_commits(log: AuditLog) -> list[int]:
    """Count the log's outermost transactions (each one commit), leaving them to do their work."""
    commits = [0]
    depth = [0]
    real = log.transaction

    @contextmanager
    def counted(what: str) -> Iterator[None]:
        depth[0] += 1
        try:
            with real(what):
                yield
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                commits[0] += 1

    log.transaction = counted  # type: ignore[method-assign]
    return commits


async def test_intents_asked_for_together_share_one_commit(log: AuditLog) -> None:
    commits = count_commits(log)
    journal = Journal(log)
    try:
        seqs = await asyncio.gather(*(journal.intent(**intent_fields(n)) for n in range(20)))
    finally:
        journal.close()
    assert sorted(seqs) == list(range(1, 21))
    assert commits[0] == 1
    assert len(log.pending_intents()) == 20


async def test_an_outcome_is_committed_with_the_next_intent_or_by_flush(log: AuditLog) -> None:
    journal = Journal(log)
    try:
        first = await journal.intent(**intent_fields(1))
        journal.outcome(intent_seq=first, outcome="deleted", status=204, reason=None)
        # Taken, not yet written: a crash now leaves the intent pending for reconciliation.
        assert [i.seq for i in log.pending_intents()] == [first]

        second = await journal.intent(**intent_fields(2))
        assert [i.seq for i in log.pending_intents()] == [second]

        journal.outcome(intent_seq=second, outcome="already_absent", status=404, reason="gone")
        await journal.flush()
        assert log.pending_intents() == []
    finally:
        journal.close()
    report = verify_log(log.path)
    assert report.clean, report.findings
    assert report.rows == 4


async def test_close_commits_the_outcomes_still_in_hand(log: AuditLog) -> None:
    journal = Journal(log)
    seq = await journal.intent(**intent_fields(1))
    journal.outcome(intent_seq=seq, outcome="deleted", status=204, reason=None)
    journal.close()
    assert log.pending_intents() == []


async def test_a_refused_group_fails_every_intent_in_it_and_writes_none(log: AuditLog) -> None:
    journal = Journal(log)
    try:
        good = journal.intent(**intent_fields(1))
        bad = journal.intent(**intent_fields(2, organizer_key="not a number"))
        results = await asyncio.gather(good, bad, return_exceptions=True)
        assert all(isinstance(result, AuditError) for result in results)
        assert log.head().rows == 0

        # The journal goes on working after a refused group.
        assert await journal.intent(**intent_fields(3)) == 1
    finally:
        journal.close()
