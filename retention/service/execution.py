"""A run's executor, wired to its session: holds re-read at send time, inventory bookkeeping.

`build_executor` gives the executor its gate (the holds in force, from the policy folder), the
inventory updates after each answer and the settings' breaker; `reconcile_pending` resolves the
intents an earlier process left pending before anything new is done.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog

from retention.engine import inventory
from retention.engine.execute import (
    SEND,
    CircuitBreaker,
    ExecutionReport,
    Executor,
    Gate,
    RemovalPort,
    Verdict,
)
from retention.engine.holds import HoldWatcher
from retention.engine.planitem import PlanItem
from retention.engine.reconcile import ReconcileReport, reconcile
from retention.engine.records import SessionRecord
from retention.errors import RemovalsInterrupted, RuntimeFailure
from retention.service.session import Session

log = structlog.get_logger(__name__)


def build_executor(
    session: Session,
    removals: RemovalPort,
    plan_id: str,
    *,
    stop_grace: float | None = None,
    recheck: Gate | None = None,
    clock_skew: Callable[[], float | None] = lambda: None,
    as_of: datetime | None = None,
) -> Executor:
    """An executor for this session's run, sending through `removals`; after a stop, a DELETE
    in flight gets at most `stop_grace` seconds.

    Its gate, asked when an item's turn comes: the holds in force (re-read from the folder), the
    host clock against the API's latest `Date`, then `recheck`, the item decided again on fresh
    facts (None: holds and clock only). Plan items and the intents reconciled after a crash
    both get a recheck. The holds are asked once more after the request's rate-limit turn,
    immediately before it leaves (`last_check`).
    """
    db, settings, clock = session.db, session.settings, session.clock
    watcher = HoldWatcher(settings.policy_dir, clock, on_invalid=session.stop.set)

    # The hold gate asks for an item's session when its turn comes and again just before it
    # leaves; who organizes it, where, when and what it is about do not change in between.
    @functools.cache
    def lookup(session_id: int) -> SessionRecord | None:
        return inventory.session_record(db, session_id)

    def on_removed(item: PlanItem) -> None:
        inventory.mark_removed(db, item.session_id, item.action, clock())  # type: ignore[arg-type]

    def read_again(item: PlanItem) -> None:
        # A 404, or a DELETE without an answer, proves nothing about the account (a wrong
        # account or URL answers 404 too; a timed-out DELETE may have been done). The next
        # scan reads the session's window again, and the listing decides: gone, it is
        # dropped; still there, it is planned again.
        found = lookup(item.session_id)
        if found is not None and found.start_time is not None:
            inventory.read_again_from(db, item.organizer_key, found.start_time)

    held = watcher.gate(lookup)

    def gate(item: PlanItem) -> Verdict:
        verdict = held(item)
        if not verdict.send:
            return verdict
        skew = clock_skew()
        if skew is not None and abs(skew) > settings.max_clock_skew:
            return Verdict(
                "skipped_changed",
                f"the host clock is {skew:+.0f} s off the API's Date, over "
                f"RETENTION_MAX_CLOCK_SKEW: nothing is removed on an unchecked clock",
            )
        return SEND if recheck is None else recheck(item)

    def subject_of(session_id: int) -> str | None:
        found = lookup(session_id)
        return found.subject if found else None

    return Executor(
        removals=removals,
        audit=session.audit,
        run_id=session.run_id,
        plan_id=plan_id,
        gate=gate,
        last_check=held,
        subject_of=subject_of,
        on_removed=on_removed,
        read_again=read_again,
        concurrency=settings.concurrency,
        breaker=CircuitBreaker(
            window=settings.breaker_window,
            threshold=settings.breaker_threshold,
            min_calls=settings.breaker_min_calls,
        ),
        stop=session.stop,
        stop_grace=stop_grace,
        as_of=as_of,
    )


async def execute(
    executor: Executor,
    items: list[PlanItem],
    on_progress: Callable[[int, int], None] | None,
) -> ExecutionReport:
    """Carry out the plan's items, reporting progress as (done, total)."""
    total = len(items)
    if on_progress is not None:
        progress = on_progress
        done = 0

        def advance(count: int) -> None:
            nonlocal done
            done += count
            progress(done, total)

        executor.on_progress = advance
    try:
        return await executor.run(items)
    except Exception as exc:
        raise RemovalsInterrupted(exc, executor.report.outcomes) from exc
    finally:
        executor.close()


async def reconcile_pending(
    session: Session, make_executor: Callable[[], Awaitable[Executor]]
) -> ReconcileReport | None:
    """Resolve the intents left without an outcome; raise when some cannot be read."""
    pending = session.audit.pending_intents()
    if not pending:
        return None
    log.warning("reconciling intents left without an outcome", pending=len(pending))
    executor = await make_executor()
    try:
        report = await reconcile(pending, executor.removals, executor.gate)
        before = executor.report.outcomes.copy()
        await executor.resolve(report.resolutions)
        report.outcomes = executor.report.outcomes - before
    finally:
        executor.close()
    if report.unresolved:
        raise RuntimeFailure(
            f"{len(report.unresolved)} pending intent(s) could not be reconciled: "
            + "; ".join(report.unresolved[:3]),
            hint="nothing new is done until they are; check the API and run again",
        )
    return report
