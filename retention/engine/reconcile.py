"""Reconciliation: intents a crash left without an outcome are resolved by reading the API.

For each pending intent the API is asked whether what the action removes is still there. Gone:
the DELETE went through before the crash, the outcome is `deleted`. Still there: the DELETE is
sent again under the same intent. Either way the intent ends with exactly one outcome, and no
DELETE is sent more than twice for one item (once before the crash, once here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from retention.audit.log import Intent
from retention.engine.execute import Executor
from retention.engine.plan import PlanItem
from retention.goto.errors import ApiError, AuthError

log = structlog.get_logger(__name__)


class StateReader(Protocol):
    """Reads whether the thing an action removes is still present in the account."""

    async def present(
        self, action: str, organizer_key: int, meeting_id: int, session_id: int
    ) -> bool: ...


@dataclass
class ReconcileReport:
    """What reconciliation found and did."""

    pending: int
    outcomes: Counter[str]
    unresolved: list[str]


async def reconcile(
    pending: Sequence[Intent], reader: StateReader, executor: Executor
) -> ReconcileReport:
    """Resolve each pending intent; from the first that cannot be read on, all stay pending."""
    before = Counter(executor.report.outcomes)
    unresolved: list[str] = []
    for index, intent in enumerate(pending):
        item = PlanItem(
            organizer_key=intent.organizer_key,
            meeting_id=intent.meeting_id,
            session_id=intent.session_id,
            action=intent.action,
            policy=intent.policy,
            policy_hash=intent.policy_hash,
            also_matched=(),
            start_time=None,
            end_time=None,
            recording_id=intent.recording_ids[0] if intent.recording_ids else None,
            recording_bytes=intent.recording_bytes,
            attendees=intent.attendee_count,
        )
        try:
            still_there = await reader.present(
                intent.action, intent.organizer_key, intent.meeting_id, intent.session_id
            )
        except AuthError:
            # No token, no reading: the auth error says what to do, one message per pending
            # intent would only bury it.
            raise
        except ApiError as exc:
            unresolved.append(f"intent {intent.seq} ({intent.action} {intent.session_id}): {exc}")
            # The API could not answer after its retries: the others are left pending too
            # rather than each waiting out its own deadline (minutes apiece) to the same end.
            unresolved.extend(
                f"intent {later.seq} ({later.action} {later.session_id}): not read after that"
                for later in pending[index + 1 :]
            )
            break
        if not still_there:
            executor.on_removed(item)
            executor.record_outcome(
                item, intent.seq, "deleted", None, "reconciled: gone when read after a restart"
            )
            continue
        # The crash may have come before the intent's hold check: a hold placed since still wins.
        hold = executor.held_by(executor.lookup(intent.session_id))
        if hold is not None:
            executor.record_outcome(item, intent.seq, "skipped_hold", None, f"held by {hold}")
            continue
        log.info("reconcile: sending again", intent=intent.seq, action=intent.action)
        await executor.send(item, intent.seq)
    await executor.flush()
    outcomes = executor.report.outcomes - before
    return ReconcileReport(pending=len(pending), outcomes=outcomes, unresolved=unresolved)
