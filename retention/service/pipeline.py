"""The main job, one function for `retention run`, `apply` and the daemon: sequence only.

    open the run (lock, databases, preflight) ► reconcile ► scan / re-read ► coverage, notices ►
    admit ► caps ► approve ► execute (each item admitted again when sent) ► record ► its end

Each route is a function of a `RunContext` (service/context.py): the CLI, the daemon and the
tests run the same code with their own context.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from retention.engine.admission import admit_item
from retention.engine.execute import Executor, Gate, Verdict
from retention.engine.planfile import LoadedPlan
from retention.engine.planitem import PlanItem
from retention.engine.postponements import postpone
from retention.engine.reconcile import ReconcileReport
from retention.engine.refresh import fresh_record, refresh_items
from retention.engine.removal import ApiRemovals
from retention.engine.state import mark_plan_applied, record_plan
from retention.errors import RuntimeFailure
from retention.goto.client import GoToClient
from retention.goto.errors import ApiError
from retention.service import execution, preflight, record, timeliness
from retention.service.context import (
    STOP_GRACE_SECONDS,
    Confirm,
    RunContext,
    admission,
    api,
    before_deciding,
    load_policies,
    make_plan,
    notices_unsent,
    open_run,
    refresh,
)
from retention.service.facts import keep_coverage, read_listing
from retention.service.refusals import (
    declined,
    end_refused,
    planned_refusals,
    refuse_over_run_cap,
    refuse_policies,
)
from retention.service.result import RunResult
from retention.service.session import Session

__all__ = ["STOP_GRACE_SECONDS", "RunContext", "RunResult", "apply", "run", "start_up"]


async def run(
    ctx: RunContext,
    *,
    trigger: str,
    confirm: Confirm | None,
    approved_by: str,
    selected: Sequence[str] | None = None,
) -> RunResult:
    """`retention run` and the daemon's job: reconcile, scan, notices, admit, approve,
    execute.

    With `selected` (a scheduled run), only those policies' removals are made; every hold and
    retain rule still applies. Without it, every enabled policy's.
    """
    policy_set = load_policies(ctx)
    async with (
        api(ctx) as client,
        open_run(
            ctx,
            policy_set,
            trigger,
            preflight.RUN_CHECKS,
            api=client,
            decides=True,
            selected=selected,
        ) as session,
    ):
        assert session is not None
        result = RunResult.of(session)
        result.reconciled = await _reconcile(ctx, session, client)
        await refresh(ctx, client, session.db)
        await before_deciding(ctx, session, result)
        plan = result.plan = make_plan(
            ctx,
            session.db,
            policy_set,
            as_of=ctx.clock(),
            selected=list(selected) if selected else None,
            subject=session.audit.subject_value,
        )
        await notices_unsent(ctx, session, result, plan)
        document = plan.document()
        result.planned = len(plan.items)
        refuse_over_run_cap(session, plan.items, plan.plan_id)
        refusals = refuse_policies(session, plan.plan_id, plan.cap_refusals, plan.refused)
        if confirm is not None and not confirm(document):
            declined(session, result, plan.plan_id)
        record_plan(session.db, plan.plan_id, document["plan_hash"], plan.created_at)
        record.plan_approved(session.audit, session.run_id, document, approved_by, plan.as_of)
        again = _decided_again(ctx, session)
        await _execute(ctx, session, client, result, plan.items, plan.plan_id, again, plan.as_of)
        record.holds_blocked(session.audit, session.run_id, plan.blocked)
        mark_plan_applied(session.db, plan.plan_id, session.run_id)
        await timeliness.conclude(session, plan, selected=selected)
        end_refused(result, refusals)
    return result


async def apply(
    ctx: RunContext, loaded: LoadedPlan, *, confirm: Confirm | None, approved_by: str
) -> RunResult:
    """`retention apply PLAN_FILE`: check the plan, approve it (keeping the removals its
    approvers postponed), re-read its facts, send the notices due, record the plan's refusals,
    execute each item still admitted when sent."""
    policy_set = load_policies(ctx)
    approvals = preflight.ApprovalsCheck(loaded)
    checks = preflight.plan_checks(loaded, approvals)
    async with (
        api(ctx) as client,
        open_run(ctx, policy_set, "apply", checks, api=client) as session,
    ):
        assert session is not None
        result = RunResult.of(session)
        result.planned = len(loaded.items)
        if confirm is not None and not confirm(loaded.document):
            declined(session, result, loaded.plan_id)
        record.plan_approved(
            session.audit,
            session.run_id,
            loaded.document,
            approved_by,
            loaded.as_of,
            approvers=approvals.recorded(),
            exclusions=[e.as_json() for e in approvals.exclusions] or None,
        )
        # Kept before anything is decided: the admission step blocks them from here on.
        postpone(
            session.db, [e.as_json() for e in approvals.exclusions], loaded.plan_id, ctx.clock()
        )
        result.reconciled = await _reconcile(ctx, session, client)
        refreshed = await refresh_items(
            loaded.items,
            client,
            session.db,
            now=ctx.clock(),
            window_days=ctx.settings.scan_window_days,
            concurrency=ctx.settings.concurrency,
        )
        await before_deciding(ctx, session, result)
        admitted = admission(ctx, session.db, policy_set, ctx.clock())
        per_policy = preflight.violations(ctx.settings, loaded.items, policy_set, loaded.in_scope)
        caps = [v for v in per_policy if v.policy is not None]
        refused = {
            name: by
            for name in {i.policy for i in loaded.items}
            if (by := admitted.unknown.get(name))
        }
        planned = planned_refusals(
            loaded.refused, exclude={*refused, *(str(v.policy) for v in caps)}
        )
        refusals = refuse_policies(
            session, loaded.plan_id, [*planned[0], *caps], {**planned[1], **refused}
        )
        held_back = {str(v.policy) for v in caps} | set(refused)
        items = [item for item in loaded.items if item.policy not in held_back]
        rechecker = admit_item(admitted)
        db = session.db

        def decided_again(item: PlanItem) -> Verdict:
            return refreshed.verdict(item, db, rechecker, ctx.clock())

        await _execute(
            ctx, session, client, result, items, loaded.plan_id, decided_again, loaded.as_of
        )
        record.holds_blocked(session.audit, session.run_id, list(loaded.document["blocked"]))
        mark_plan_applied(session.db, loaded.plan_id, session.run_id)
        end_refused(result, refusals)
    return result


async def start_up(ctx: RunContext) -> int:
    """The daemon's start-up check: databases and token; reconcile intents left pending.

    Returns how many pending intents were reconciled; a start-up with none records no run.
    Raises when the databases cannot be opened, no access token can be had, or a pending
    intent cannot be resolved.
    """
    policy_set = load_policies(ctx)
    pending = lambda audit: bool(audit.pending_intents())  # noqa: E731
    async with (
        api(ctx) as client,
        open_run(ctx, policy_set, "daemon start-up", api=client, opens_run=pending) as session,
    ):
        await client.auth.access_token()
        if session is None:
            return 0
        result = RunResult.of(session)
        result.reconciled = await _reconcile(ctx, session, client)
        return result.reconciled.pending if result.reconciled else 0


async def _reconcile(
    ctx: RunContext, session: Session, client: GoToClient
) -> ReconcileReport | None:
    async def executor() -> Executor:
        # Decided again on current facts: the organizer listing first, then coverage.
        try:
            await read_listing(client, session.db, ctx.clock())
        except ApiError as exc:
            pending = len(session.audit.pending_intents())
            raise RuntimeFailure(
                f"{pending} pending intent(s) could not be reconciled: the organizer listing "
                f"they are decided again on could not be read ({exc.message})",
                hint="nothing new is done until they are; check the API and run again",
            ) from exc
        keep_coverage(session.db, session.policy_set, ctx.clock())
        return _executor(ctx, session, client)

    return await execution.reconcile_pending(session, executor)


def _executor(ctx: RunContext, session: Session, client: GoToClient) -> Executor:
    """The executor of intents a crash left pending: one sent again is decided again."""
    return execution.build_executor(
        session,
        ApiRemovals(client, session.db),
        "reconcile",
        stop_grace=ctx.stop_grace,
        recheck=_decided_again(ctx, session),
        clock_skew=client.clock_skew_seconds,
    )


def _decided_again(ctx: RunContext, session: Session) -> Gate:
    """Each item admitted again on the inventory's facts, this run's policies and now."""
    rechecker = admit_item(admission(ctx, session.db, session.policy_set, ctx.clock()))
    db = session.db
    return lambda item: rechecker(item, fresh_record(db, item.session_id), ctx.clock())


async def _execute(  # noqa: PLR0917
    ctx: RunContext,
    session: Session,
    client: GoToClient,
    result: RunResult,
    items: list[PlanItem],
    plan_id: str,
    recheck: Gate,
    as_of: datetime,
) -> None:
    executor = execution.build_executor(
        session,
        ApiRemovals(client, session.db),
        plan_id,
        stop_grace=ctx.stop_grace,
        recheck=recheck,
        clock_skew=client.clock_skew_seconds,
        as_of=as_of,
    )
    result.executed(await execution.execute(executor, items, ctx.on_progress))
