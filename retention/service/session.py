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
from retention.errors import Refused, RemovalsInterrupted, RetentionError
from retention.goto.client import GoToClient
from retention.policy import PolicySet
from retention.service import record
from retention.service.logging import RunResult as RunState
from retention.service.logging import RunSummary, log_run_summary
from retention.service.statedir import LockWait, locked
from retention.settings import Settings

log = structlog.get_logger(__name__)


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
    # What was overdue per policy at the end, when the run decided the whole inventory; else,
    # for a run that was to decide it, what stays overdue for want of a decision (`not_run`).
    overdue: dict[str, Any] | None = None
    undecided: Callable[[], dict[str, Any] | None] | None = None


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
    lock: LockWait | None = None,
    opens_run: Callable[[AuditLog], bool] = lambda _audit: True,
    on_open: Callable[[Session], None] | None = None,
) -> AsyncIterator[Session | None]:
    """Open a run for the `async with` block; yields None when `opens_run` says there is none.
    `on_open` sees the session once `run_started` is recorded, before the rest of the preflight.

    Raises InstanceLocked (or RunStopped) when the state directory cannot be had, and the
    error of the first preflight check that fails, after recording it.
    """
    async with locked(settings, command=f"retention {trigger}", wait=lock, stop=stop) as db:
        opening = Opening(settings, clock, db, policy_set, api)
        for check in (c for c in checks if c.guards_audit):
            try:
                await _check(check, opening)
            except RetentionError as exc:
                await alerts.refused_at_opening(settings, db, exc, trigger=trigger, clock=clock)
                raise
        with record.open_audit(settings, clock) as audit:
            if not opens_run(audit):
                yield None
                return
            opened = _run(settings, policy_set, audit, opening, trigger, checks, stop, on_open)
            async with opened as session:
                yield session


@contextlib.asynccontextmanager
async def _run(  # noqa: PLR0917
    settings: Settings,
    policy_set: PolicySet,
    audit: AuditLog,
    opening: Opening,
    trigger: str,
    checks: Sequence[Check],
    stop: asyncio.Event,
    on_open: Callable[[Session], None] | None = None,
) -> AsyncIterator[Session]:
    """`run_started`, the rest of the preflight, the body, and whatever happens, its end."""
    clock, db = opening.clock, opening.db
    started = clock()
    session = Session(
        record.new_run_id(started), started, settings, clock, db, audit, policy_set, stop
    )
    audit.run_started(
        run_id=session.run_id, trigger=trigger, settings_summary=settings_summary(settings)
    )
    record.policy_loaded(audit, session.run_id, policy_set)
    if on_open is not None:
        on_open(session)
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
    if session.overdue is None and session.undecided is not None:
        session.overdue = session.undecided()
    try:
        session.audit.run_finished(
            run_id=session.run_id, counts=counts, result=tally.result, overdue=session.overdue
        )
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
