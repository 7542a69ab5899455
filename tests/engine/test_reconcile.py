"""Reconciliation in-process: intents a crash left pending, an in-memory account, a real record."""

from __future__ import annotations

from collections import Counter

import pytest
from fakeapi import FakeAccount
from records import intent_fields

from retention.audit import AuditLog
from retention.engine.execute import SEND, Executor, Verdict
from retention.engine.planitem import PlanItem
from retention.engine.reconcile import reconcile
from retention.goto.errors import AuthError

pytestmark = pytest.mark.anyio


def left_pending(audit: AuditLog, *session_ids: int, action: str = "delete_session") -> None:
    """Intents as a run that crashed before their outcomes would have left them."""
    for session_id in session_ids:
        audit.intent(**intent_fields(session_id, run_id="run-crashed", action=action))


async def resolve(
    account: FakeAccount, audit: AuditLog, gate: object = lambda _item: SEND
) -> tuple[Counter[str], list[str]]:
    executor = Executor(removals=account, audit=audit, run_id="run-2", plan_id="reconcile")
    report = await reconcile(audit.pending_intents(), account, gate)  # type: ignore[arg-type]
    await executor.resolve(report.resolutions)
    executor.close()
    return executor.report.outcomes, report.unresolved


async def test_an_intent_whose_session_is_gone_ends_deleted_without_a_delete(
    audit: AuditLog,
) -> None:
    left_pending(audit, 1)
    account = FakeAccount()

    outcomes, unresolved = await resolve(account, audit)

    assert outcomes == Counter({"deleted": 1})
    assert unresolved == []
    assert account.sent == []
    assert audit.pending_intents() == []


async def test_an_intent_whose_session_is_still_there_is_sent_once_more(
    audit: AuditLog,
) -> None:
    left_pending(audit, 1, 2)
    account = FakeAccount.with_sessions(1, 2)

    outcomes, _ = await resolve(account, audit)

    assert outcomes == Counter({"deleted": 2})
    assert sorted(account.sent) == [("delete_session", 1), ("delete_session", 2)]
    assert account.sessions == {}
    assert audit.pending_intents() == []


async def test_an_intent_now_held_is_skipped_and_nothing_is_sent(audit: AuditLog) -> None:
    left_pending(audit, 1, 2)
    account = FakeAccount.with_sessions(1, 2)

    def gate(item: PlanItem) -> Verdict:
        return Verdict("skipped_hold", "held by hold:LATE") if item.session_id == 1 else SEND

    outcomes, _ = await resolve(account, audit, gate)

    assert outcomes == Counter({"skipped_hold": 1, "deleted": 1})
    assert account.sent == [("delete_session", 2)]
    assert audit.pending_intents() == []


async def test_a_failing_api_leaves_that_intent_and_every_later_one_pending(
    audit: AuditLog,
) -> None:
    left_pending(audit, 1, 2, 3, 4)
    account = FakeAccount.with_sessions(1, 2, 3, 4)
    account.reads_fail_from = 2

    outcomes, unresolved = await resolve(account, audit)

    assert outcomes == Counter({"deleted": 2})
    assert [action_session[1] for action_session in account.sent] == [1, 2]
    assert len(unresolved) == 2
    assert "503" in unresolved[0]
    assert unresolved[1].endswith("not read after that")
    assert [intent.session_id for intent in audit.pending_intents()] == [3, 4]


async def test_reconciling_only_reads_and_decides_until_the_executor_acts(
    audit: AuditLog,
) -> None:
    left_pending(audit, 1, 2)
    account = FakeAccount.with_sessions(2)

    report = await reconcile(audit.pending_intents(), account, lambda _item: SEND)

    assert [(r.item.session_id, r.verdict.decision) for r in report.resolutions] == [
        (1, "deleted"),
        (2, "send"),
    ]
    assert account.sent == []
    assert len(audit.pending_intents()) == 2


async def test_a_recording_removal_is_read_against_the_recording_not_the_session(
    audit: AuditLog,
) -> None:
    left_pending(audit, 1, action="delete_recordings")
    account = FakeAccount({1: {"delete_session", "delete_attendees"}})

    outcomes, _ = await resolve(account, audit)

    assert outcomes == Counter({"deleted": 1})
    assert account.sent == []
    assert 1 in account.sessions, "the session itself stays"


async def test_an_auth_failure_while_reading_stops_reconciliation_with_it(
    audit: AuditLog,
) -> None:
    left_pending(audit, 1)

    class NoToken(FakeAccount):
        async def present(
            self, action: str, organizer_key: int, meeting_id: int, session_id: int
        ) -> bool:
            raise AuthError("POST", "/oauth/token", 401, "invalid_grant")

    with pytest.raises(AuthError):
        await reconcile(audit.pending_intents(), NoToken(), lambda _item: SEND)
    assert len(audit.pending_intents()) == 1
