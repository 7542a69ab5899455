"""Execution: intent ► decide again ► DELETE ► outcome, bounded, breaker-guarded, stoppable.

The write-ahead rule is the whole point: an intent is durable in the audit record before its
DELETE is sent, and every intent gets exactly one outcome. A crash in between leaves a pending
intent, which `reconcile` resolves at the next start by reading the API; the executor carries
out its resolutions as it carries out plan items. The writes go through the `Journal`, which
commits them in groups. Just before each DELETE the `gate` decides the item again (holds in
force today): send it, or skip it with an outcome and a reason. `last_check` is asked again
after the request's rate-limit turn, immediately before it leaves (the hold gate): a hold placed
while the request waited its turn still keeps it off the wire. So does a stop (the run's, which
the client shares): the intent then ends `failed`, "not sent", and the next run plans it again.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, TypeVar

import structlog

from retention import failpoints
from retention.audit.log import AuditLog, Outcome
from retention.engine.journal import Journal
from retention.engine.planitem import PlanItem
from retention.engine.stopping import GraceExpired, within_grace
from retention.goto.errors import ApiError, NotFound, Stopped

log = structlog.get_logger(__name__)

U = TypeVar("U")


class RemovalPort(Protocol):
    """The account as execution sees it: send one removal; read whether its target is there."""

    async def remove(
        self,
        action: str,
        organizer_key: int,
        session_id: int,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        """Send the DELETE for one action; raises NotFound or ApiError as the API answers,
        Stopped when the run's stop kept it (or its next attempt) off the wire.

        `before_send` is called after each rate-limit turn, immediately before each attempt
        leaves; whatever it raises comes through unchanged and nothing is sent.
        """
        ...

    async def present(
        self, action: str, organizer_key: int, meeting_id: int, session_id: int
    ) -> bool:
        """Whether what `action` removes from the session is still in the account."""
        ...


Decision = Literal["send", "deleted", "skipped_hold", "skipped_changed"]


class KeptAtSend(Exception):
    """The last check before the wire kept an item back; its verdict ends the intent."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass(frozen=True)
class Verdict:
    """What to do with one item now: send its DELETE, or end its intent with this outcome."""

    decision: Decision
    reason: str | None = None

    @property
    def send(self) -> bool:
        """Whether the item's DELETE is to be sent."""
        return self.decision == "send"


SEND = Verdict("send")
Gate = Callable[[PlanItem], Verdict]


@dataclass(frozen=True)
class Resolution:
    """A decision reached for an intent already recorded (by reconciliation after a crash)."""

    item: PlanItem
    intent_seq: int
    verdict: Verdict


@dataclass
class CircuitBreaker:
    """Trips when failures, 403s or 404s exceed `threshold` of the last `window` calls.

    Many 403s or 404s mean the service is pointed at the wrong account or base URL: every
    further DELETE would be a blind one, so the run stops.
    """

    window: int = 20
    threshold: float = 0.5
    min_calls: int = 10
    recent: deque[bool] = field(default_factory=deque)
    tripped_reason: str | None = None

    def record(self, *, bad: bool) -> None:
        self.recent.append(bad)
        if len(self.recent) > self.window:
            self.recent.popleft()
        bad_calls = sum(self.recent)
        if (
            self.tripped_reason is None
            and len(self.recent) >= self.min_calls
            and bad_calls > self.threshold * len(self.recent)
        ):
            self.tripped_reason = (
                f"circuit breaker: {bad_calls} of the last {len(self.recent)} calls failed or "
                f"answered 403/404 (threshold {self.threshold:.0%})"
            )

    @property
    def tripped(self) -> bool:
        return self.tripped_reason is not None


@dataclass
class ExecutionReport:
    """What a run of the executor did."""

    outcomes: Counter[str] = field(default_factory=Counter)
    not_started: int = 0
    halted: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.halted is None and not self.outcomes.get("failed")


Subject = Callable[[int], str | None]
Removed = Callable[[PlanItem], None]


def _ignore(_item: PlanItem) -> None:
    return None


@dataclass
class Executor:
    """Carries out plan items and resolutions through the port, with bounded concurrency."""

    removals: RemovalPort
    audit: AuditLog
    run_id: str
    plan_id: str
    gate: Gate = lambda _item: SEND
    last_check: Gate | None = None
    subject_of: Subject = lambda _session_id: None
    on_removed: Removed = _ignore
    read_again: Removed = _ignore
    concurrency: int = 8
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_grace: float | None = None
    as_of: datetime | None = None
    on_progress: Callable[[int], None] | None = None
    report: ExecutionReport = field(default_factory=ExecutionReport)
    journal: Journal = field(init=False)

    def __post_init__(self) -> None:
        self.journal = Journal(self.audit)

    async def run(self, items: Sequence[PlanItem]) -> ExecutionReport:
        """Execute every item; stop early on the breaker or `stop`, finishing calls in flight."""
        groups = list(_by_session(items))
        await self._drain(groups, self._execute)
        self._conclude(len(items))
        return self.report

    async def resolve(self, resolutions: Sequence[Resolution]) -> ExecutionReport:
        """Carry out reconciliation's resolutions, each under the intent it resolves."""
        units = [[resolution] for resolution in resolutions]
        await self._drain(units, lambda r: self._carry_out(r.item, r.intent_seq, r.verdict))
        self._conclude(len(resolutions))
        return self.report

    def close(self) -> None:
        """Commit the outcomes not yet written, and stop the audit writer."""
        self.journal.close()

    async def flush(self) -> None:
        """Commit the outcomes recorded so far; durable when this returns."""
        await self.journal.flush()

    async def _drain(self, units: list[list[U]], handle: Callable[[U], Awaitable[None]]) -> None:
        pending = iter(units)
        workers = [
            asyncio.create_task(self._worker(pending, handle))
            for _ in range(min(self.concurrency, len(units)))
        ]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            # One worker failed (the audit record refused a write): the others finish the calls
            # they have in flight and record them, and take nothing new.
            self.stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
            raise

    def _conclude(self, total: int) -> None:
        done = sum(self.report.outcomes.values())
        self.report.not_started = max(total - done, 0)
        if self.breaker.tripped:
            self.report.halted = self.breaker.tripped_reason
        elif self.stop.is_set() and self.report.not_started:
            self.report.halted = "stopped by signal before every item was executed"

    def _halting(self) -> bool:
        return self.stop.is_set() or self.breaker.tripped

    async def _worker(
        self, pending: Iterator[list[U]], handle: Callable[[U], Awaitable[None]]
    ) -> None:
        try:
            for unit in pending:
                for entry in unit:
                    if self._halting():
                        return
                    await handle(entry)
        finally:
            await self.flush()

    async def _execute(self, item: PlanItem) -> None:
        intent_seq = await self.journal.intent(
            run_id=self.run_id,
            plan_id=self.plan_id,
            policy=item.policy,
            policy_hash=item.policy_hash,
            action=item.action,
            organizer_key=item.organizer_key,
            meeting_id=item.meeting_id,
            session_id=item.session_id,
            subject=self.subject_of(item.session_id),
            start_time=item.start_time,
            end_time=item.end_time,
            recording_ids=[item.recording_id] if item.recording_id else [],
            recording_bytes=item.recording_bytes,
            attendee_count=item.attendees,
            as_of=self.as_of,
            due_at=item.due_at,
        )
        failpoints.hit("after_intent")
        await self._carry_out(item, intent_seq, self.gate(item))

    async def _carry_out(self, item: PlanItem, intent_seq: int, verdict: Verdict) -> None:
        if verdict.decision == "send":
            await self._send(item, intent_seq)
            return
        if verdict.decision == "deleted":
            self.on_removed(item)
        self.record_outcome(item, intent_seq, verdict.decision, None, verdict.reason)

    async def _send(self, item: PlanItem, intent_seq: int) -> None:
        """Send the DELETE for an intent already recorded, and record its one outcome."""
        failpoints.hit("before_send")
        try:
            await self._within_grace(
                self.removals.remove(
                    item.action,
                    item.organizer_key,
                    item.session_id,
                    before_send=self._last_check(item),
                ),
                item,
            )
        except KeptAtSend as kept:
            decision = kept.verdict.decision
            outcome: Outcome = "skipped_hold" if decision == "skipped_hold" else "skipped_changed"
            self.record_outcome(item, intent_seq, outcome, None, kept.verdict.reason)
            return
        except Stopped as stopped:
            # The stop came before this DELETE left (its turn, a retry's back-off): it is not
            # sent. If an earlier attempt went out unanswered, it may have been carried out.
            if stopped.sent:
                self.read_again(item)
            self.record_outcome(item, intent_seq, "failed", None, stopped.message)
            return
        except NotFound:
            failpoints.hit("after_response")
            self.breaker.record(bad=True)
            self.read_again(item)
            self.record_outcome(
                item, intent_seq, "already_absent", 404, "not found: already removed"
            )
            return
        except ApiError as exc:
            self.breaker.record(bad=True)
            if exc.status is None or exc.status >= 500:
                # No answer, or a server error: the DELETE may have been carried out anyway.
                self.read_again(item)
            self.record_outcome(item, intent_seq, "failed", exc.status, exc.message)
            return
        failpoints.hit("after_response")
        self.breaker.record(bad=False)
        # The outcome first: if the inventory cannot be written, the removal is still counted.
        self.record_outcome(item, intent_seq, "deleted", 204, None)
        self.on_removed(item)

    def _last_check(self, item: PlanItem) -> Callable[[], None] | None:
        check = self.last_check
        if check is None:
            return None

        def before_send() -> None:
            verdict = check(item)
            if not verdict.send:
                raise KeptAtSend(verdict)

        return before_send

    async def _within_grace(self, call: Awaitable[None], item: PlanItem) -> None:
        """The call, given at most `stop_grace` seconds once a stop comes (then: no answer)."""
        if self.stop_grace is None:
            await call
            return
        try:
            await within_grace(call, self.stop, self.stop_grace)
        except GraceExpired:
            raise ApiError(
                "DELETE",
                f"session {item.session_id} ({item.action})",
                None,
                detail=f"no answer within the {self.stop_grace:g} s stop grace",
            ) from None

    def record_outcome(
        self,
        item: PlanItem,
        intent_seq: int,
        outcome: Outcome,
        status: int | None,
        reason: str | None,
    ) -> None:
        """Take an intent's one outcome, committed with the next intent or by `flush`."""
        self.journal.outcome(intent_seq=intent_seq, outcome=outcome, status=status, reason=reason)
        self.report.outcomes[outcome] += 1
        if outcome == "failed":
            self.report.failures.append(
                f"{item.action} session {item.session_id}: {status or '-'} {reason or ''}".strip()
            )
            log.warning(
                "removal failed",
                action=item.action,
                session_id=item.session_id,
                status=status,
                reason=reason,
            )
        if self.on_progress is not None:
            self.on_progress(1)


def _by_session(items: Iterable[PlanItem]) -> Iterator[list[PlanItem]]:
    """Items grouped per session, in plan order; a session delete makes the others moot."""
    groups: dict[int, list[PlanItem]] = {}
    for item in items:
        groups.setdefault(item.session_id, []).append(item)
    for group in groups.values():
        session_delete = [item for item in group if item.action == "delete_session"]
        yield session_delete[:1] if session_delete else group
