"""One run session: lock, databases, preflight, `run_started`, the body, and a guaranteed end.

`run`, `apply` and the daemon's start-up check each open a session and do their work inside it:

    lock ► state db ► preflight (audit-guarding checks) ► audit record ► run_started ►
    preflight (the other checks) ► BODY ► run_finished ► checkpoint ► summary log line

The preflight is an ordered list of named checks, run before any scan or reconciliation
(`service/checks.py` holds the ones every run makes, `service/preflight.py` apply's own):

    1. audit chain verified             guards the audit record (`audit_unverified`)
    2. account binding, clock skew      (`other_account`, `clock_skew`)
    3. unknown names in holds           (`unknown_name`)
    4. the command's own checks         `apply`: the plan may be applied, the run's cap

A check raises `Refused` (exit 3) or `RuntimeFailure` (exit 1) with a reason code. The session
then writes one `refused` event naming the code and ends the run `refused`; a check marked
`guards_audit` runs before the record is opened for writing, so its failure writes nothing at
all. Adding a check is one line in `checks.PREFLIGHT` (every run) or in the command's list.

Whatever the body does, raising or cancelled, `run_finished` is written, the record
checkpointed, one summary line logged and the run's alerts sent (`alerts/runs.py`: a refusal,
a failure, a halt, the witness; "resolved" once a run is ok again). A failure after removals
went out (the disk fills mid-run) is raised as `RemovalsInterrupted`, which counts them, so
that no message says nothing was done.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlite_utils import Database

from retention.alerts import runs as alerts
from retention.audit.log import AuditLog
from retention.audit.store import OUTCOMES
from retention.engine.state import open_state_db
from retention.errors import Refused, RemovalsInterrupted, RetentionError, RuntimeFailure
from retention.goto.client import GoToClient
from retention.policy import PolicySet
from retention.service import record
from retention.service.lock import InstanceLocked, acquire
from retention.service.logging import RunResult as RunState
from retention.service.logging import RunSummary, log_run_summary
from retention.settings import Settings

log = structlog.get_logger(__name__)

LOCK_POLL_SECONDS = 1.0


class RunStopped(RuntimeFailure):
    """A stop (SIGTERM or the run's deadline) came before the run could do its work."""


@dataclass(frozen=True)
class Opening:
    """What a preflight check may look at: the run's settings, clock, state and policies."""

    settings: Settings
    clock: Callable[[], datetime]
    db: Database
    policy_set: PolicySet
    api: GoToClient | None = None


CheckFunction = Callable[[Opening], Awaitable[None] | None]


@dataclass(frozen=True)
class Check:
    """One named preflight check; `guards_audit`: it must pass before the record is written."""

    name: str
    run: CheckFunction
    guards_audit: bool = False


@dataclass
class RunTally:
    """What the body reports for run_finished and the summary line."""

    result: RunState = "ok"
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Session:
    """An open run: its id, databases, policy set, stop signal; the body fills `tally`."""

    run_id: str
    started_at: datetime
    settings: Settings
    clock: Callable[[], datetime]
    db: Database
    audit: AuditLog
    policy_set: PolicySet
    stop: asyncio.Event
    tally: RunTally = field(default_factory=RunTally)
    counts: Callable[[], dict[str, int]] | None = None


@dataclass(frozen=True)
class LockWait:
    """How long to wait for the state directory: 0 refuses at once, None until stopped."""

    seconds: float | None = 0
    on_wait: Callable[[InstanceLocked], None] | None = None


async def _take_lock(
    stack: contextlib.ExitStack,
    settings: Settings,
    command: str,
    wait: LockWait,
    stop: asyncio.Event,
) -> None:
    """Hold the lock for the session, polling without blocking the loop while another has it."""
    loop = asyncio.get_running_loop()
    deadline = None if wait.seconds is None else loop.time() + wait.seconds
    told = False
    while True:
        try:
            stack.enter_context(acquire(settings.state_dir, 0, command=command))
        except InstanceLocked as exc:
            if deadline is not None and loop.time() >= deadline:
                raise
            if stop.is_set():
                raise RunStopped(
                    f"stopped while waiting for the state directory ({exc.holder.describe()})",
                    hint="nothing was done; the next run starts afresh",
                ) from None
            if not told and wait.on_wait is not None:
                wait.on_wait(exc)
            told = True
        else:
            return
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def _check(check: Check, opening: Opening) -> None:
    outcome = check.run(opening)
    if inspect.isawaitable(outcome):
        await outcome


def settings_summary(settings: Settings) -> dict[str, Any]:
    """The settings a run records in run_started (never a secret)."""
    return {
        "api_base_url": settings.api_base_url,
        "rate_limit": settings.rate_limit,
        "concurrency": settings.concurrency,
        "max_deletions_per_run": settings.max_deletions_per_run,
        "audit_subject": settings.audit_subject,
    }


@contextlib.asynccontextmanager
async def open_session(
    settings: Settings,
    policy_set: PolicySet,
    *,
    trigger: str,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    checks: Sequence[Check] = (),
    api: GoToClient | None = None,
    lock: LockWait = LockWait(),
    opens_run: Callable[[AuditLog], bool] = lambda _audit: True,
) -> AsyncIterator[Session | None]:
    """Open a run for the `async with` block; yields None when `opens_run` says there is none.

    Raises InstanceLocked (or RunStopped) when the state directory cannot be had, and the
    error of the first preflight check that fails, after recording it.
    """
    with contextlib.ExitStack() as stack:
        await _take_lock(stack, settings, f"retention {trigger}", lock, stop)
        db = open_state_db(settings.state_db)
        opening = Opening(settings, clock, db, policy_set, api)
        for check in (c for c in checks if c.guards_audit):
            try:
                await _check(check, opening)
            except RetentionError as exc:
                await alerts.refused_at_opening(settings, db, exc, trigger=trigger, clock=clock)
                raise
        audit = stack.enter_context(record.open_audit(settings, clock))
        if not opens_run(audit):
            yield None
            return
        started = clock()
        session = Session(
            record.new_run_id(started), started, settings, clock, db, audit, policy_set, stop
        )
        audit.run_started(
            run_id=session.run_id, trigger=trigger, settings_summary=settings_summary(settings)
        )
        record.policy_loaded(audit, session.run_id, policy_set)
        failure: BaseException | None = None
        try:
            await _preflight(session, opening, [c for c in checks if not c.guards_audit])
            yield session
        except BaseException as exc:
            failure = exc
            if session.tally.result == "ok":
                session.tally.result = "refused" if isinstance(exc, Refused) else "failed"
            raise
        finally:
            try:
                _finish(session)
            finally:
                await _alert_end(session, trigger, failure)


async def _alert_end(session: Session, trigger: str, error: BaseException | None) -> None:
    """The run's end, as plain values, to the alerts: its result, counts, witness failures."""
    counts = session.counts() if session.counts is not None else session.tally.counts
    witnessed = session.audit.witness_failures
    end = alerts.RunEnd(session.run_id, trigger, session.tally.result, counts, error, witnessed)
    await alerts.run_ended(session.settings, session.db, end, session.clock)


async def _preflight(session: Session, opening: Opening, checks: Sequence[Check]) -> None:
    for check in checks:
        try:
            await _check(check, opening)
        except RetentionError as exc:
            session.tally.result = "refused"
            if exc.reason != "audit_unverified":
                session.audit.refused(
                    run_id=session.run_id,
                    reason=exc.reason or "refused",
                    details={
                        "check": check.name,
                        "message": exc.message,
                        **getattr(exc, "details", {}),
                    },
                )
            log.warning("preflight check refused the run", check=check.name, reason=exc.reason)
            raise


def _finish(session: Session) -> None:
    tally = session.tally
    counts = session.counts() if session.counts is not None else tally.counts
    try:
        session.audit.run_finished(run_id=session.run_id, counts=counts, result=tally.result)
        session.audit.checkpoint(state=session.db)
    except Exception as exc:
        if any(counts.get(name) for name in OUTCOMES):
            raise RemovalsInterrupted(exc, counts) from exc
        raise
    log_run_summary(
        RunSummary(
            run_id=session.run_id,
            result=tally.result,
            started_at=session.started_at,
            finished_at=session.clock(),
            counts=counts,
            error=tally.error,
        )
    )
