"""The main job, one function for `retention run`, `apply` and the daemon: wiring and sequence.

    lock ► reconcile ► scan ► decide ► plan ► caps ► approve ► execute ► record ► checkpoint

Everything with a side effect (settings, clock, HTTP transport, confirmation, progress, stop
signal) comes in from the caller, so the CLI, the daemon and the tests run the same code.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlite_utils import Database

from retention.audit.log import AuditLog
from retention.engine import inventory
from retention.engine.decide import decide
from retention.engine.execute import CircuitBreaker, ExecutionReport, Executor
from retention.engine.holds import HoldWatcher
from retention.engine.plan import (
    CapExceeded,
    CapViolation,
    LoadedPlan,
    Plan,
    PlanItem,
    build_plan,
    cap_violations,
    limit_plan,
    plan_refusals,
)
from retention.engine.reconcile import ReconcileReport, reconcile
from retention.engine.removal import ApiRemover, ApiStateReader
from retention.engine.scan import Progress as ScanProgress
from retention.engine.scan import ScanReport, scan
from retention.engine.state import (
    known_plan_hash,
    mark_plan_applied,
    open_state_db,
    plan_applied_by,
    record_plan,
)
from retention.errors import InvalidInput, Refused, RuntimeFailure
from retention.goto.client import GoToClient
from retention.goto.factory import client_from_settings
from retention.policy import PolicySet, load_policy_set
from retention.service import record
from retention.service.lock import acquire
from retention.service.logging import RunResult as RunState
from retention.service.logging import RunSummary, log_run_summary, register_secret
from retention.settings import Settings

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Confirm = Callable[[Mapping[str, Any]], bool]


class ScanIncomplete(RuntimeFailure):
    """Some organizers or windows could not be read; their watermarks did not move."""


@dataclass
class RunResult:
    """What one run did, for the CLI's rendering, the daemon's metrics and the exit code."""

    run_id: str
    started_at: datetime
    plan: Plan | None = None
    reconciled: ReconcileReport | None = None
    execution: ExecutionReport = field(default_factory=ExecutionReport)
    result: RunState = "ok"
    planned: int = 0

    def counts(self) -> dict[str, int]:
        """Counts for the run_finished event and the summary line."""
        counts: dict[str, int] = {"planned": self.planned}
        counts.update(self.execution.outcomes)
        counts["not_started"] = self.execution.not_started
        if self.reconciled:
            counts["reconciled"] = self.reconciled.pending
        return counts


@dataclass
class Pipeline:
    """One run of the job against the account the settings name."""

    settings: Settings
    clock: Clock = lambda: datetime.now(UTC)
    transport: httpx.AsyncBaseTransport | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    on_progress: Callable[[int, int], None] | None = None
    lock_wait: float | None = 0

    def load_policies(self) -> PolicySet:
        return load_policy_set([self.settings.policy_dir])

    def client(self) -> GoToClient:
        return client_from_settings(
            self.settings, transport=self.transport, on_secret=register_secret
        )

    async def scan_inventory(
        self,
        client: GoToClient,
        db: Database,
        *,
        full: bool = False,
        progress: ScanProgress | None = None,
    ) -> ScanReport:
        """Scan the account into the inventory with the settings' windows, start and margin."""
        settings = self.settings
        return await scan(
            client,
            db,
            now=self.clock(),
            window_days=settings.scan_window_days,
            start=settings.scan_start_time,
            settle=timedelta(hours=settings.settle_hours),
            full=full,
            concurrency=settings.concurrency,
            progress=progress,
        )

    async def refresh(self, client: GoToClient, db: Database) -> ScanReport:
        """Bring the inventory up to date; refuse to go on from an incomplete one."""
        report = await self.scan_inventory(client, db)
        if not report.complete:
            shown = "; ".join(window.describe() for window in report.incomplete[:5])
            raise ScanIncomplete(
                f"the inventory is incomplete: {len(report.incomplete)} window(s) could not be "
                f"read ({shown}); nothing is planned from a partial view",
                hint="check the API's health and run again; unread windows are retried",
            )
        return report

    def make_plan(
        self,
        db: Database,
        policy_set: PolicySet,
        *,
        as_of: datetime,
        selected: list[str] | None = None,
    ) -> Plan:
        """Decide over the whole inventory and gather the plan (pure but for reading the db)."""
        unknown = sorted(set(selected or ()) - {p.name for p in policy_set.policies})
        if unknown:
            raise InvalidInput(
                f"no such policy: {', '.join(unknown)}",
                hint="`retention validate` lists the policies in force",
            )
        now = self.clock()
        return build_plan(
            decide(inventory.iter_sessions(db), policy_set, as_of),
            policy_set,
            plan_id=f"plan-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
            created_at=now,
            as_of=as_of,
            selected=selected,
            max_clock_skew=timedelta(seconds=self.settings.max_clock_skew),
            api_base_url=self.settings.api_base_url,
        )

    async def preview(
        self,
        *,
        as_of: datetime | None,
        selected: list[str] | None,
        record: bool,
        limit: int | None = None,
    ) -> Plan:
        """`retention plan`: refresh the inventory, decide, and (with --out) record the plan."""
        policy_set = self.load_policies()
        with acquire(self.settings.state_dir, self.lock_wait, command="retention plan"):
            db = open_state_db(self.settings.state_db)
            async with self.client() as client:
                await self.refresh(client, db)
            plan = self.make_plan(db, policy_set, as_of=as_of or self.clock(), selected=selected)
            plan = limit_plan(plan, limit)
            if record:
                record_plan(db, plan.plan_id, plan.document()["plan_hash"], plan.created_at)
        return plan

    def violations(
        self, plan_items: list[PlanItem], policy_set: PolicySet, in_scope: Mapping[str, int]
    ) -> list[CapViolation]:
        return cap_violations(
            plan_items, policy_set, in_scope, max_per_run=self.settings.max_deletions_per_run
        )

    async def run(self, *, trigger: str, confirm: Confirm | None, approved_by: str) -> RunResult:
        """`retention run` and the daemon's job: reconcile, scan, plan, caps, approve, execute."""
        policy_set = self.load_policies()
        with acquire(self.settings.state_dir, self.lock_wait, command=f"retention {trigger}"):
            db = open_state_db(self.settings.state_db)
            with record.open_audit(self.settings, self.clock) as audit:
                started = self.clock()
                result = RunResult(record.new_run_id(started), started)
                audit.run_started(
                    run_id=result.run_id, trigger=trigger, settings_summary=self._summary()
                )
                record.policy_loaded(audit, result.run_id, policy_set)
                try:
                    async with self.client() as client:
                        result.reconciled = await self._reconcile(client, db, audit, result)
                        await self.refresh(client, db)
                        plan = result.plan = self.make_plan(db, policy_set, as_of=self.clock())
                        document = plan.document()
                        result.planned = len(plan.items)
                        self._refuse_over_caps(audit, result, plan, policy_set)
                        if confirm is not None and not confirm(document["summary"]):
                            result.result = "declined"
                        else:
                            record_plan(db, plan.plan_id, document["plan_hash"], plan.created_at)
                            audit.plan_approved(
                                run_id=result.run_id,
                                plan_id=plan.plan_id,
                                plan_hash=document["plan_hash"],
                                approved_by=approved_by,
                            )
                            await self._execute(
                                client, db, audit, result, items=plan.items, plan_id=plan.plan_id
                            )
                            record.holds_blocked(audit, result.run_id, plan.blocked)
                            mark_plan_applied(db, plan.plan_id, result.run_id)
                except BaseException as exc:
                    result.result = "refused" if isinstance(exc, Refused) else "failed"
                    raise
                finally:
                    self._finish(audit, result)
        return result

    async def apply(
        self, loaded: LoadedPlan, *, confirm: Confirm | None, approved_by: str
    ) -> RunResult:
        """`retention apply PLAN_FILE`: check the plan, approve it, execute it."""
        policy_set = self.load_policies()
        with acquire(self.settings.state_dir, self.lock_wait, command="retention apply"):
            db = open_state_db(self.settings.state_db)
            with record.open_audit(self.settings, self.clock) as audit:
                started = self.clock()
                result = RunResult(record.new_run_id(started), started)
                audit.run_started(
                    run_id=result.run_id, trigger="apply", settings_summary=self._summary()
                )
                record.policy_loaded(audit, result.run_id, policy_set)
                try:
                    result.planned = len(loaded.items)
                    self._refuse_changed(audit, result, loaded, db, policy_set)
                    if confirm is not None and not confirm(loaded.document["summary"]):
                        result.result = "declined"
                        return result
                    audit.plan_approved(
                        run_id=result.run_id,
                        plan_id=loaded.plan_id,
                        plan_hash=loaded.recorded_hash,
                        approved_by=approved_by,
                    )
                    async with self.client() as client:
                        result.reconciled = await self._reconcile(client, db, audit, result)
                        await self._execute(
                            client, db, audit, result, items=loaded.items, plan_id=loaded.plan_id
                        )
                    record.holds_blocked(audit, result.run_id, list(loaded.document["blocked"]))
                    mark_plan_applied(db, loaded.plan_id, result.run_id)
                except BaseException as exc:
                    result.result = "refused" if isinstance(exc, Refused) else "failed"
                    raise
                finally:
                    self._finish(audit, result)
        return result

    def _refuse_changed(
        self,
        audit: AuditLog,
        result: RunResult,
        loaded: LoadedPlan,
        db: Database,
        policy_set: PolicySet,
    ) -> None:
        applied_by = plan_applied_by(db, loaded.plan_id)
        reasons = [
            text
            for _code, text in plan_refusals(
                loaded,
                known_hash=known_plan_hash(db, loaded.plan_id),
                policies_digest=policy_set.digest,
                now=self.clock(),
                max_age=timedelta(hours=self.settings.plan_max_age_hours),
                max_clock_skew=timedelta(seconds=self.settings.max_clock_skew),
                api_base_url=self.settings.api_base_url,
            )
        ]
        if applied_by:
            reasons.append(f"plan {loaded.plan_id} was already applied by {applied_by}")
        in_scope = loaded.document["summary"].get("per_policy", {})
        scope_counts = {name: totals.get("in_scope", 0) for name, totals in in_scope.items()}
        violations = self.violations(loaded.items, policy_set, scope_counts)
        reasons.extend(v.describe() for v in violations)
        if reasons:
            audit.refused(
                run_id=result.run_id,
                reason="plan refused",
                details={"plan_id": loaded.plan_id, "file": loaded.path, "reasons": reasons},
            )
            raise Refused(
                f"plan {loaded.plan_id} refused: " + "; ".join(reasons),
                hint="make a new plan with `retention plan --out FILE` and review it",
            )

    def _refuse_over_caps(
        self, audit: AuditLog, result: RunResult, plan: Plan, policy_set: PolicySet
    ) -> None:
        violations = self.violations(plan.items, policy_set, plan.in_scope)
        if violations:
            audit.refused(
                run_id=result.run_id,
                reason="safety cap",
                details={
                    "plan_id": plan.plan_id,
                    "violations": [v.describe() for v in violations],
                },
            )
            raise CapExceeded(violations)

    async def _reconcile(
        self, client: GoToClient, db: Database, audit: AuditLog, result: RunResult
    ) -> ReconcileReport | None:
        pending = audit.pending_intents()
        if not pending:
            return None
        log.warning("reconciling intents left without an outcome", pending=len(pending))
        executor = self._executor(client, db, audit, result.run_id, "reconcile")
        try:
            report = await reconcile(pending, ApiStateReader(client, db), executor)
        finally:
            executor.close()
        if report.unresolved:
            raise RuntimeFailure(
                f"{len(report.unresolved)} pending intent(s) could not be reconciled: "
                + "; ".join(report.unresolved[:3]),
                hint="nothing new is done until they are; check the API and run again",
            )
        return report

    def _executor(
        self, client: GoToClient, db: Database, audit: AuditLog, run_id: str, plan_id: str
    ) -> Executor:
        watcher = HoldWatcher(self.settings.policy_dir, self.clock, on_invalid=self.stop.set)

        def on_removed(item: PlanItem) -> None:
            inventory.mark_removed(db, item.session_id, item.action, self.clock())  # type: ignore[arg-type]

        def read_again(item: PlanItem) -> None:
            # A 404, or a DELETE without an answer, proves nothing about the account (a wrong
            # account or URL answers 404 too; a timed-out DELETE may have been done). The next
            # scan reads the session's window again, and the listing decides: gone, it is
            # dropped; still there, it is planned again.
            record = inventory.session_record(db, item.session_id)
            if record is not None and record.start_time is not None:
                inventory.read_again_from(db, item.organizer_key, record.start_time)

        return Executor(
            remover=ApiRemover(client),
            audit=audit,
            run_id=run_id,
            plan_id=plan_id,
            held_by=watcher.held_by,
            lookup=lambda session_id: inventory.session_record(db, session_id),
            on_removed=on_removed,
            read_again=read_again,
            concurrency=self.settings.concurrency,
            breaker=CircuitBreaker(
                window=self.settings.breaker_window,
                threshold=self.settings.breaker_threshold,
                min_calls=self.settings.breaker_min_calls,
            ),
            stop=self.stop,
        )

    async def _execute(
        self,
        client: GoToClient,
        db: Database,
        audit: AuditLog,
        result: RunResult,
        *,
        items: list[PlanItem],
        plan_id: str,
    ) -> None:
        executor = self._executor(client, db, audit, result.run_id, plan_id)
        total = len(items)
        if self.on_progress is not None:
            progress = self.on_progress
            done = 0

            def advance(count: int) -> None:
                nonlocal done
                done += count
                progress(done, total)

            executor.on_progress = advance
        result.execution = await executor.run(items)
        if result.execution.halted:
            result.result = "halted"
        elif not result.execution.ok:
            result.result = "failed"

    def _finish(self, audit: AuditLog, result: RunResult) -> None:
        audit.run_finished(run_id=result.run_id, counts=result.counts(), result=result.result)
        audit.checkpoint()
        halted = result.execution.halted
        log_run_summary(
            RunSummary(
                run_id=result.run_id,
                result=result.result,
                started_at=result.started_at,
                finished_at=self.clock(),
                counts=result.counts(),
                error=halted,
            )
        )

    def _summary(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "api_base_url": settings.api_base_url,
            "rate_limit": settings.rate_limit,
            "concurrency": settings.concurrency,
            "max_deletions_per_run": settings.max_deletions_per_run,
            "audit_subject": settings.audit_subject,
        }
