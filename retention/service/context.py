"""The run context: what has side effects, passed to the plain functions every route is made of.

A frozen `RunContext` holds the settings, clock, HTTP transport, stop signal, lock wait, the
policy set in force (None: the folder, read at each run), the preflight checks and a metrics
sink. `run`, `apply`, start-up (service/pipeline.py), `propose` (service/review.py), `preview`
and `compare` (service/preview.py) are functions of it; each decides through the one admission
step (engine/admission.py) at the same point, on facts read now:

    the organizer listing ► holds' coverage (`hold_scope_left`) ► owner notices due ► admit
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from retention.alerts import owners
from retention.alerts.conditions import Alert, settle
from retention.audit.log import AuditLog
from retention.engine import inventory
from retention.engine.admission import Admission, admit
from retention.engine.plan import Plan
from retention.engine.reappear import record_reappeared
from retention.engine.scan import ScanReport
from retention.engine.state import account_of
from retention.errors import InvalidInput
from retention.goto.client import GoToClient
from retention.goto.errors import Stopped
from retention.goto.factory import client_from_settings
from retention.goto.http import Transport
from retention.policy import PolicySet, load_policy_set
from retention.policy.notice import check_notice_days
from retention.service import record, timeliness
from retention.service.checks import PREFLIGHT
from retention.service.facts import admission_for, keep_coverage
from retention.service.logging import register_secret
from retention.service.reading import require_complete, scan_as_set, unless_stopped
from retention.service.result import RunResult
from retention.service.session import Check, Session, open_session
from retention.service.statedir import LockWait, RunStopped
from retention.settings import Settings

Clock = Callable[[], datetime]
# Asked with the plan document before anything is removed; False declines (exit 3).
Confirm = Callable[[Mapping[str, Any]], bool]
Progress = Callable[[int, int], None]
# Calls in flight after a stop get at most this long (DECISIONS: below TimeoutStopSec=120).
STOP_GRACE_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def _quiet(_value: object) -> None:
    return None


@dataclass(frozen=True)
class MetricsSink:
    """Sees each client made, each scan done and each record opened (the daemon's metrics)."""

    on_client: Callable[[GoToClient], None] = _quiet
    on_scan: Callable[[ScanReport], None] = _quiet
    on_audit: Callable[[AuditLog], None] = _quiet


@dataclass(frozen=True)
class RunContext:
    """What a route needs that has side effects. `policy_set` None reads the folder at each run;
    `stoppable_scan` abandons a scan when `stop` is set (nothing is removed yet); `checks` are
    every run's preflight (the daemon's verifies the record incrementally after its start-up);
    `on_progress` and `on_scan_progress` hear (done, total) of the removals and of the scan."""

    settings: Settings
    clock: Clock = _now
    transport: Transport | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    lock: LockWait = field(default_factory=LockWait)
    policy_set: PolicySet | None = None
    metrics: MetricsSink = field(default_factory=MetricsSink)
    checks: Sequence[Check] = PREFLIGHT
    stoppable_scan: bool = False
    stop_grace: float = STOP_GRACE_SECONDS
    on_progress: Progress | None = None
    on_scan_progress: Progress | None = None


def load_policies(ctx: RunContext) -> PolicySet:
    """The policy set in force: the context's, else the folder as it is now."""
    policy_set = ctx.policy_set or load_policy_set([ctx.settings.policy_dir])
    check_notice_days(policy_set, ctx.settings.owner_notice_days)
    return policy_set


def client(ctx: RunContext) -> GoToClient:
    """A client of the API the settings name, stopped by the run's `stop`.

    The one stop path, for SIGTERM and the run's deadline alike: once `stop` is set no call
    starts, none is retried, and a request waiting for its rate-limit turn is not sent (it
    raises `Stopped`); a request already sent is answered, and the executor gives a DELETE
    in flight the stop grace.
    """
    made = client_from_settings(
        ctx.settings, transport=ctx.transport, stop=ctx.stop, on_secret=register_secret
    )
    ctx.metrics.on_client(made)
    return made


@contextlib.asynccontextmanager
async def api(ctx: RunContext) -> AsyncIterator[GoToClient]:
    """A client for the run; a call the stop kept from being sent ends the run as RunStopped.

    The executor records its own (an intent's DELETE not sent ends `failed`); what comes
    through here was a read (the scan, a refresh, reconciliation) or a token request.
    """
    async with client(ctx) as made:
        try:
            yield made
        except (Stopped, BaseExceptionGroup) as exc:
            stopped = _stopped_only(exc)
            if stopped is None:
                raise
            raise RunStopped(
                f"the run was stopped: {stopped.message}",
                hint="no call was sent after the stop; the next run picks up from here",
            ) from exc


def _stopped_only(exc: BaseException) -> Stopped | None:
    """The first `Stopped` when it is all `exc` holds (alone or in nested groups), else None."""
    if isinstance(exc, Stopped):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        found = [_stopped_only(inner) for inner in exc.exceptions]
        if found and all(found):
            return found[0]
    return None


async def refresh(ctx: RunContext, made: GoToClient, db: Database) -> ScanReport:
    """Bring the inventory up to date; refuse to go on from an incomplete one."""
    scanning = scan_as_set(made, db, ctx.settings, now=ctx.clock(), progress=ctx.on_scan_progress)
    report = await (unless_stopped(scanning, ctx.stop) if ctx.stoppable_scan else scanning)
    ctx.metrics.on_scan(report)
    return require_complete(report)


def admission(
    ctx: RunContext, db: Database, policy_set: PolicySet, as_of: datetime, *, caps: bool = True
) -> Admission:
    """The admission step's inputs as the state database has them now."""
    return admission_for(db, policy_set, ctx.settings, as_of, caps=caps)


def make_plan(
    ctx: RunContext,
    db: Database,
    policy_set: PolicySet,
    *,
    as_of: datetime,
    selected: list[str] | None = None,
    account_key: str | None = None,
    awaiting: bool = True,
    **shown: Any,
) -> Plan:
    """Decide over the whole inventory and admit: the plan (pure but for reading the db).

    The plan records `account_key` (the account the scan read), else the state's account;
    `shown` passes `subject`, `offline` and `inventory_at` to build_plan. With `awaiting`,
    removals a `notice: required` policy may not make yet are `blocked` and caps are counted;
    without it, the plan is what the policies alone call for by `as_of`: what owner notices
    announce.
    """
    unknown = sorted(set(selected or ()) - {p.name for p in policy_set.policies})
    if unknown:
        raise InvalidInput(
            f"no such policy: {', '.join(unknown)}",
            hint="`retention validate` lists the policies in force",
        )
    now = ctx.clock()
    return admit(
        lambda: inventory.iter_sessions(db),
        admission(ctx, db, policy_set, as_of, caps=awaiting),
        plan_id=f"plan-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        created_at=now,
        selected=selected,
        max_clock_skew=timedelta(seconds=ctx.settings.max_clock_skew),
        api_base_url=ctx.settings.api_base_url,
        account_key=account_key or account_of(db),
        **shown,
    )


def planner(ctx: RunContext) -> owners.MakePlan:
    """`make_plan` bound to the context (what owner notices plan with)."""
    return lambda db, policy_set, **options: make_plan(ctx, db, policy_set, **options)


def open_run(
    ctx: RunContext,
    policy_set: PolicySet,
    trigger: str,
    checks: Sequence[Check] = (),
    *,
    opens_run: Callable[[AuditLog], bool] = lambda _audit: True,
    api: GoToClient | None = None,
    decides: bool = False,
    selected: Sequence[str] | None = None,
) -> contextlib.AbstractAsyncContextManager[Session | None]:
    """The one opening of a run: lock, state db, preflight, record, `run_started`, its end.

    `decides`: the run is to decide the whole inventory for the `selected` policies (None:
    every one); if it ends before it did, what was overdue stays so, as `not_run`."""

    def opened(audit: AuditLog) -> bool:
        ctx.metrics.on_audit(audit)
        return opens_run(audit)

    return open_session(
        ctx.settings,
        policy_set,
        trigger=trigger,
        clock=ctx.clock,
        stop=ctx.stop,
        checks=[*ctx.checks, *checks],
        lock=ctx.lock,
        opens_run=opened,
        api=api,
        on_open=(lambda session: timeliness.expect_decision(session, selected))
        if decides
        else None,
    )


async def before_deciding(ctx: RunContext, session: Session, result: RunResult) -> None:
    """On current facts, before any decision: what a scan found again after its removal, the
    holds' coverage, then the notices due (and the first load of each policy content, which
    each removal's due time counts from)."""
    timeliness.remember_loads(session)
    record_reappeared(
        session.db,
        session.audit,
        run_id=session.run_id,
        grace_seconds=ctx.settings.reappear_grace_seconds,
    )
    result.scope_left = keep_coverage(session.db, session.policy_set, ctx.clock())
    record.scope_left(session.audit, session.run_id, result.scope_left)
    await settle(
        ctx.settings,
        session.db,
        ctx.clock(),
        found=[
            Alert(
                f"hold_scope_left:{left.hold_id}:{left.organizer_key}",
                f"hold {left.hold_id} keeps sessions its scope no longer covers",
                f"organizer {left.organizer_key} has left the scope of hold {left.hold_id}; the "
                f"hold keeps the {left.sessions} session(s) it covered\nhint: if the matter "
                "still concerns them nothing is to be done; to release them, lift the hold and "
                "place one under a new id",
                kind="info",
            )
            for left in result.scope_left
        ],
    )
    await owners.send_owner_notices(session, planner(ctx))


async def notices_unsent(ctx: RunContext, session: Session, result: RunResult, plan: Plan) -> None:
    """Removals waiting on a notice that could not go out: counted, alerted, in `/healthz`."""
    result.notice_unsent = owners.unsent(session.db, plan)
    await owners.settle_unsent(ctx.settings, session.db, ctx.clock(), result.notice_unsent)
