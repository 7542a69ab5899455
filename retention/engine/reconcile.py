"""Reconciliation: intents a crash left without an outcome, resolved from what the API shows.

`reconcile` only reads and decides; it returns one resolution per intent it could read, as data:

    gone        the DELETE went through before the crash ► outcome `deleted`
    still there: the executor's gate decides it again (holds, clock, the policies in force on
    the inventory's facts)                               ► `skipped_hold` / `skipped_changed`,
                                                           or send again under the same intent

The executor carries the resolutions out (`Executor.resolve`) as it carries out plan items. Either
way the intent ends with exactly one outcome, and no item gets more than two DELETEs (once before
the crash, once here). From the first intent that cannot be read on, all stay pending.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from retention.audit.log import Intent
from retention.engine.execute import Gate, RemovalPort, Resolution, Verdict
from retention.engine.planitem import PlanItem
from retention.goto.errors import ApiError, AuthError

GONE = Verdict("deleted", "reconciled: gone when read after a restart")


@dataclass
class ReconcileReport:
    """What reconciliation read and decided; `outcomes` once the executor carried it out."""

    pending: int
    resolutions: list[Resolution]
    unresolved: list[str]
    outcomes: Counter[str] = field(default_factory=Counter)


def intent_item(intent: Intent) -> PlanItem:
    """The plan item an intent announced, rebuilt from the audit record."""
    return PlanItem(
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


async def reconcile(pending: Sequence[Intent], port: RemovalPort, gate: Gate) -> ReconcileReport:
    """Read each pending intent's target and decide what ends it; nothing is sent here."""
    resolutions: list[Resolution] = []
    unresolved: list[str] = []
    for index, intent in enumerate(pending):
        item = intent_item(intent)
        try:
            still_there = await port.present(
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
        # Decided again as any removal is: a hold or retain rule placed since still wins.
        verdict = GONE if not still_there else gate(item)
        resolutions.append(Resolution(item, intent.seq, verdict))
    return ReconcileReport(pending=len(pending), resolutions=resolutions, unresolved=unresolved)
