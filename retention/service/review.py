"""Review mode's scheduled run: apply the proposals approved since, then propose the next plan.

    each pending proposal with max(1, RETENTION_APPROVALS_REQUIRED) valid approvals ►
        `pipeline.apply` (the one apply path: every check, each item decided again when sent)
    one session ► expired proposals: `plan_expired`, set aside ► rejected ones: `refused`
        (`rejected`, who and why), set aside ► scan ► decide ► plan ►
        a new proposal file and `plan_proposed` (none while one for the same policies waits)

A proposal refused for good (altered, stale, made under other policies, applied already) is set
aside in `refused/`; one refused for a passing reason (the clock, the record) waits for the next
run. To keep a session out of an approved proposal, place a hold: holds are read at send time.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from retention.alerts.conditions import Alert, settle
from retention.alerts.reminders import Waiting, link, remind_approvers
from retention.approvals.proposals import Proposal, pending, set_aside, write_proposal
from retention.approvals.store import approvals_needed, approver_names
from retention.engine.plan import Plan
from retention.engine.state import record_plan
from retention.errors import RetentionError
from retention.service import pipeline, timeliness
from retention.service.context import (
    RunContext,
    api,
    before_deciding,
    load_policies,
    make_plan,
    notices_unsent,
    open_run,
    refresh,
)
from retention.service.refusals import end_refused, refuse_policies
from retention.service.result import RunResult
from retention.service.session import Session

log = structlog.get_logger("retention.daemon")

# Refusals that no later run can lift: the proposal is set aside.
_FINAL = frozenset(
    {"changed_plan", "stale_plan", "preview_plan", "applied_before", "other_account"}
)
APPROVED_BY = "review mode (daemon)"


async def scheduled_run(ctx: RunContext, selected: list[str]) -> RunResult:
    """The daemon's scheduled run: in apply mode it removes, in review mode it proposes."""
    if ctx.settings.daemon_mode == "review":
        return await scheduled_review(ctx, selected)
    return await pipeline.run(
        ctx, trigger="daemon", confirm=None, approved_by="schedule", selected=selected
    )


async def scheduled_review(ctx: RunContext, selected: Sequence[str]) -> RunResult:
    """The daemon's scheduled run in review mode; raises the first apply's error, if any, after
    the proposal is made."""
    settings = ctx.settings
    failure: RetentionError | None = None
    applied: RunResult | None = None
    for proposal in pending(settings):
        if proposal.expired(ctx.clock(), settings) or not proposal.approved(settings):
            continue
        log.info("applying an approved proposal", file=proposal.path.name)
        try:
            applied = await pipeline.apply(
                ctx, proposal.plan, confirm=None, approved_by=APPROVED_BY
            )
        except RetentionError as exc:
            failure = failure or exc
            if exc.reason in _FINAL:
                set_aside(proposal, "refused")
            continue
        set_aside(proposal, "applied")
    proposed = await propose(ctx, selected)
    if failure is not None:
        raise failure
    return applied or proposed


def _expire(session: Session, proposals: list[Proposal]) -> list[Proposal]:
    """Record and set aside the proposals too old to apply; the others, still pending."""
    now = session.clock()
    waiting = []
    for proposal in proposals:
        if not proposal.expired(now, session.settings):
            waiting.append(proposal)
            continue
        tally = proposal.tally(session.settings)
        session.audit.plan_review(
            "plan_expired",
            run_id=session.run_id,
            plan_id=proposal.plan.plan_id,
            data={
                "plan_hash": proposal.plan.recorded_hash,
                "file": proposal.path.name,
                "approvals": len(tally.valid),
                "age_hours": round(proposal.age_hours(now), 2),
            },
        )
        set_aside(proposal, "expired")
        log.warning("proposal expired unapplied", file=proposal.path.name)
    return waiting


def _rejected(session: Session, proposals: list[Proposal]) -> list[Proposal]:
    """Record and set aside the proposals an approver rejected (a `refused` event, reason
    `rejected`, naming who and why); the others, still pending."""
    waiting = []
    for proposal in proposals:
        rejections = proposal.tally(session.settings).rejections
        if not rejections:
            waiting.append(proposal)
            continue
        session.audit.refused(
            run_id=session.run_id,
            reason="rejected",
            details={
                "plan_id": proposal.plan.plan_id,
                "plan_hash": proposal.plan.recorded_hash,
                "file": proposal.path.name,
                "by": [
                    {"principal": r.principal, "time": r.time, "reason": r.reason}
                    for r in rejections
                ],
            },
        )
        set_aside(proposal, "refused")
        log.warning("proposal rejected", file=proposal.path.name, by=rejections[0].principal)
    return waiting


async def propose(ctx: RunContext, selected: Sequence[str]) -> RunResult:
    """One session: expire what is too old, then scan, plan and write a proposal."""
    policy_set = load_policies(ctx)
    chosen = sorted(selected) or None
    async with (
        api(ctx) as client,
        open_run(
            ctx, policy_set, "daemon review", api=client, decides=True, selected=chosen
        ) as session,
    ):
        assert session is not None
        result = RunResult.of(session)
        waiting = _rejected(session, _expire(session, pending(ctx.settings)))
        await refresh(ctx, client, session.db)
        await before_deciding(ctx, session, result)
        plan = result.plan = make_plan(
            ctx,
            session.db,
            policy_set,
            as_of=ctx.clock(),
            selected=chosen,
            subject=session.audit.subject_value,
        )
        await notices_unsent(ctx, session, result, plan)
        refusals = refuse_policies(session, plan.plan_id, plan.cap_refusals, plan.refused)
        same = [p for p in waiting if p.selected == chosen]
        if same:
            log.info("a proposal for these policies awaits approval", file=same[0].path.name)
        elif plan.items:
            result.planned = len(plan.items)
            waiting.append(_proposed(session, plan, chosen))
        await _remind(session, waiting)
        await timeliness.conclude(session, plan, selected=chosen, proposed=True)
        end_refused(result, refusals)
    return result


def _proposed(session: Session, plan: Plan, chosen: list[str] | None) -> Proposal:
    """Write the plan as a proposal, recorded (`plan_proposed`) and remembered here."""
    document = plan.document()
    record_plan(session.db, plan.plan_id, document["plan_hash"], plan.created_at)
    path = write_proposal(session.settings, document)
    session.audit.plan_review(
        "plan_proposed",
        run_id=session.run_id,
        plan_id=plan.plan_id,
        data={
            "plan_hash": document["plan_hash"],
            "file": path.name,
            "items": len(plan.items),
            "summary": document["summary"]["total"],
            "selected_policies": chosen,
        },
    )
    log.info("plan proposed", file=path.name, items=len(plan.items))
    return next(p for p in pending(session.settings) if p.path == path)


async def _remind(session: Session, waiting: Sequence[Proposal]) -> None:
    """Alert for each proposal awaiting approvals (again once per RETENTION_NOTIFY_REPEAT);
    a proposal applied, set aside or expired since has its alert resolved. The approvers who
    have not signed are mailed a reminder, at most once per repeat too."""
    settings = session.settings
    need = approvals_needed(settings)
    found = []
    unsigned = []
    for proposal in waiting:
        tally = proposal.tally(settings)
        have = len(tally.valid)
        if have >= need:
            continue
        page = link(settings, proposal.path.name)
        found.append(
            Alert(
                f"proposal:{proposal.plan.plan_id}",
                f"a plan awaits approval ({have} of {need})",
                f"proposal {proposal.path.name}: {len(proposal.plan.items)} removals, "
                f"{have} of {need} approvals\nhint: review it with `retention plans`"
                + (f" or at {page}" if page else "")
                + f", then `retention approve {proposal.path} --key KEY`",
                kind="info",
            )
        )
        unsigned.append(
            Waiting(
                proposal.plan.plan_id,
                proposal.path.name,
                len(proposal.plan.items),
                have,
                need,
                frozenset(tally.principals),
            )
        )
    await settle(
        settings,
        session.db,
        session.clock(),
        found=found,
        gone=["proposal:"],
        note="the proposal was applied, set aside or expired",
    )
    addresses = {name for name in approver_names(settings) if "@" in name}
    await remind_approvers(settings, session.db, session.clock(), unsigned, addresses)
