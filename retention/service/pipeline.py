"""The main job, one function for `retention run`, `apply` and the daemon: wiring and sequence.

    session (lock, databases, preflight) ► reconcile ► scan ► decide ► plan ► caps ► approve ►
    execute ► record ► session end (run_finished, checkpoint)

Everything with a side effect (settings, clock, HTTP transport, confirmation, progress, stop
signal, the policy set in force) comes in from the caller, so the CLI, the daemon and the tests
run the same code; the daemon sets parameters, it does not subclass.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlite_utils import Database

from retention.audit.log import AuditLog
from retention.engine import inventory
from retention.engine.decide import decide
from retention.engine.execute import ExecutionReport, Executor, Gate, Verdict
from retention.engine.plan import (
    CapViolation,
    LoadedPlan,
    Plan,
    PlanItem,
    limit_plan,
    plan_within_caps,
    run_cap_violation,
)
from retention.engine.policy_checks import known_names
from retention.engine.recheck import Rechecker
from retention.engine.reconcile import ReconcileReport
from retention.engine.refresh import fresh_record, refresh_items
from retention.engine.removal import ApiRemovals
from retention.engine.scan import Progress as ScanProgress
from retention.engine.scan import ScanReport, scan
from retention.engine.state import account_of, mark_plan_applied, open_state_db, record_plan
from retention.engine.stopping import GraceExpired, within_grace
from retention.errors import InvalidInput, Refused, RuntimeFailure
from retention.goto.client import GoToClient
from retention.goto.factory import client_from_settings
from retention.policy import PolicySet, load_policy_set
from retention.policy.names import check_hold_names, unknown_names
from retention.service import execution, preflight, record
from retention.service.checks import PREFLIGHT, account_and_clock
from retention.service.lock import acquire
from retention.service.logging import RunResult as RunState
from retention.service.logging import register_secret
from retention.service.session import (
    Check,
    LockWait,
    Opening,
    RunStopped,
    RunTally,
    Session,
    open_session,
)
from retention.settings import Settings

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
Confirm = Callable[[Mapping[str, Any]], bool]
# Calls in flight after a stop get at most this long (DECISIONS: below TimeoutStopSec=120).
STOP_GRACE_SECONDS = 30.0


class ScanIncomplete(RuntimeFailure):
    """Some organizers or windows could not be read; their watermarks did not move."""


@dataclass
class RunResult:
    """What one run did, for the CLI's rendering, the daemon's metrics and the exit code."""

    run_id: str
    started_at: datetime
    tally: RunTally = field(default_factory=RunTally)
    plan: Plan | None = None
    reconciled: ReconcileReport | None = None
    execution: ExecutionReport = field(default_factory=ExecutionReport)
    planned: int = 0

    @classmethod
    def of(cls, session: Session) -> RunResult:
        """The result of this session's run; the session records what it says at its end."""
        result = cls(session.run_id, session.started_at, session.tally)
        session.counts = result.counts
        return result

    @property
    def result(self) -> RunState:
        return self.tally.result

    @result.setter
    def result(self, value: RunState) -> None:
        self.tally.result = value

    def counts(self) -> dict[str, int]:
        """Counts for the run_finished event and the summary line."""
        counts: dict[str, int] = {"planned": self.planned}
        counts.update(self.execution.outcomes)
        counts["not_started"] = self.execution.not_started
        if self.reconciled:
            counts["reconciled"] = self.reconciled.pending
        return counts


def _quiet(_value: object) -> None:
    return None


@dataclass
class Pipeline:
    """One run of the job against the account the settings name.

    `policy_set` is the set in force (the daemon's last good load); None reads the folder at
    each run. `stoppable_scan` abandons a scan when `stop` is set (nothing is removed yet).
    `on_client`, `on_scan` and `on_audit` see each client made, each scan done and each record
    opened (the daemon's metrics). `checks` are every run's preflight (the daemon's verifies the
    record incrementally after its start-up).
    """

    settings: Settings
    clock: Clock = lambda: datetime.now(UTC)
    transport: httpx.AsyncBaseTransport | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    on_progress: Callable[[int, int], None] | None = None
    lock: LockWait = field(default_factory=LockWait)
    policy_set: PolicySet | None = None
    stoppable_scan: bool = False
    on_client: Callable[[GoToClient], None] = _quiet
    on_scan: Callable[[ScanReport], None] = _quiet
    on_audit: Callable[[AuditLog], None] = _quiet
    checks: Sequence[Check] = PREFLIGHT
    stop_grace: float = STOP_GRACE_SECONDS

    def load_policies(self) -> PolicySet:
        if self.policy_set is not None:
            return self.policy_set
        return load_policy_set([self.settings.policy_dir])

    def client(self) -> GoToClient:
        client = client_from_settings(
            self.settings, transport=self.transport, on_secret=register_secret
        )
        self.on_client(client)
        return client

    @contextlib.asynccontextmanager
    async def _api(self) -> AsyncIterator[GoToClient]:
        """A client for the run; once `stop` is set, its calls get at most the stop grace."""
        async with self.client() as client:
            waiting = asyncio.ensure_future(self.stop.wait())
            waiting.add_done_callback(lambda done: _shorten(done, client, self.stop_grace))
            try:
                yield client
            finally:
                waiting.cancel()

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
        if self.stoppable_scan:
            report = await self._stoppable(self.scan_inventory(client, db))
        else:
            report = await self.scan_inventory(client, db)
        self.on_scan(report)
        if not report.complete:
            shown = "; ".join(window.describe() for window in report.incomplete[:5])
            raise ScanIncomplete(
                f"the inventory is incomplete: {len(report.incomplete)} window(s) could not be "
                f"read ({shown}); nothing is planned from a partial view",
                hint="check the API's health and run again; unread windows are retried",
            )
        return report

    async def _stoppable(self, scanning: Coroutine[Any, Any, ScanReport]) -> ScanReport:
        """Scan, unless a stop comes first: reading is safe to abandon, nothing is removed yet."""
        try:
            return await within_grace(scanning, self.stop, 0)
        except GraceExpired:
            raise RunStopped(
                "the run was stopped while reading the inventory; nothing was removed",
                hint="the next run reads it again",
            ) from None

    def make_plan(
        self,
        db: Database,
        policy_set: PolicySet,
        *,
        as_of: datetime,
        selected: list[str] | None = None,
        account_key: str | None = None,
    ) -> Plan:
        """Decide over the whole inventory and gather the plan (pure but for reading the db).

        The plan records `account_key` (the account the scan read), else the state's account.
        """
        unknown = sorted(set(selected or ()) - {p.name for p in policy_set.policies})
        if unknown:
            raise InvalidInput(
                f"no such policy: {', '.join(unknown)}",
                hint="`retention validate` lists the policies in force",
            )
        now = self.clock()
        organizers, groups = known_names(db)
        names = unknown_names(policy_set, organizers, groups)
        refused = {
            policy.name: by
            for policy in policy_set.policies
            if (by := names.blocked_by(policy.name)) is not None
        }
        return plan_within_caps(
            lambda: decide(inventory.iter_sessions(db), policy_set, as_of),
            policy_set,
            refused=refused,
            plan_id=f"plan-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
            created_at=now,
            as_of=as_of,
            selected=selected,
            max_clock_skew=timedelta(seconds=self.settings.max_clock_skew),
            api_base_url=self.settings.api_base_url,
            account_key=account_key or account_of(db),
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
        with acquire(self.settings.state_dir, self.lock.seconds, command="retention plan"):
            db = open_state_db(self.settings.state_db)
            async with self.client() as client:
                # The clock and the account are checked (and recorded on first use) first.
                await account_and_clock(Opening(self.settings, self.clock, db, policy_set, client))
                await self.refresh(client, db)
            # A hold shrunk by a misspelt name must not pass for one in force, even in a preview.
            check_hold_names(policy_set, *known_names(db))
            plan = self.make_plan(
                db,
                policy_set,
                as_of=as_of or self.clock(),
                selected=selected,
                account_key=client.account_key,  # the account its facts were read from
            )
            plan = limit_plan(plan, limit)
            if record:
                record_plan(db, plan.plan_id, plan.document()["plan_hash"], plan.created_at)
        return plan

    def violations(
        self, plan_items: list[PlanItem], policy_set: PolicySet, in_scope: Mapping[str, int]
    ) -> list[CapViolation]:
        return preflight.violations(self.settings, plan_items, policy_set, in_scope)

    def _session(
        self,
        policy_set: PolicySet,
        trigger: str,
        checks: Sequence[Check] = (),
        *,
        opens_run: Callable[[AuditLog], bool] = lambda _audit: True,
        **options: Any,
    ) -> contextlib.AbstractAsyncContextManager[Session | None]:
        def opened(audit: AuditLog) -> bool:
            self.on_audit(audit)
            return opens_run(audit)

        return open_session(
            self.settings,
            policy_set,
            trigger=trigger,
            clock=self.clock,
            stop=self.stop,
            checks=[*self.checks, *checks],
            lock=self.lock,
            opens_run=opened,
            **options,
        )

    async def run(
        self,
        *,
        trigger: str,
        confirm: Confirm | None,
        approved_by: str,
        selected: Sequence[str] | None = None,
    ) -> RunResult:
        """`retention run` and the daemon's job: reconcile, scan, plan, caps, approve, execute.

        With `selected` (a scheduled run), only those policies' removals are made; every hold and
        retain rule still applies. Without it, every enabled policy's.
        """
        policy_set = self.load_policies()
        async with self._api() as client, self._session(policy_set, trigger, api=client) as session:
            assert session is not None
            result = RunResult.of(session)
            result.reconciled = await self._reconcile(session, client)
            await self.refresh(client, session.db)
            plan = result.plan = self.make_plan(
                session.db,
                policy_set,
                as_of=self.clock(),
                selected=list(selected) if selected else None,
            )
            document = plan.document()
            result.planned = len(plan.items)
            self._refuse_over_run_cap(session, plan.items, plan.plan_id)
            refusals = self._refuse_policies(session, plan.plan_id, plan.cap_refusals, plan.refused)
            if confirm is not None and not confirm(document["summary"]):
                result.result = "declined"
                return result
            record_plan(session.db, plan.plan_id, document["plan_hash"], plan.created_at)
            self._approve(session, plan.plan_id, document["plan_hash"], approved_by, plan.as_of)
            rechecker = Rechecker(policy_set)
            db = session.db

            def decided_again(item: PlanItem) -> Verdict:
                return rechecker(item, fresh_record(db, item.session_id), self.clock())

            await self._execute(
                session, client, result, plan.items, plan.plan_id, decided_again, plan.as_of
            )
            record.holds_blocked(session.audit, session.run_id, plan.blocked)
            mark_plan_applied(session.db, plan.plan_id, session.run_id)
            self._end_refused(result, refusals)
        return result

    async def apply(
        self, loaded: LoadedPlan, *, confirm: Confirm | None, approved_by: str
    ) -> RunResult:
        """`retention apply PLAN_FILE`: check the plan, approve it, re-read its facts, execute
        each item that is still due, decided again when it is sent."""
        policy_set = self.load_policies()
        checks = preflight.plan_checks(loaded)
        async with (
            self._api() as client,
            self._session(policy_set, "apply", checks, api=client) as session,
        ):
            assert session is not None
            result = RunResult.of(session)
            result.planned = len(loaded.items)
            if confirm is not None and not confirm(loaded.document["summary"]):
                result.result = "declined"
                return result
            self._approve(session, loaded.plan_id, loaded.recorded_hash, approved_by, loaded.as_of)
            result.reconciled = await self._reconcile(session, client)
            refreshed = await refresh_items(
                loaded.items,
                client,
                session.db,
                now=self.clock(),
                window_days=self.settings.scan_window_days,
                concurrency=self.settings.concurrency,
            )
            organizers, groups = known_names(session.db)
            unknown = unknown_names(policy_set, organizers, groups)
            per_policy = self.violations(loaded.items, policy_set, _in_scope(loaded))
            caps = [v for v in per_policy if v.policy is not None]
            refused = {
                name: by
                for name in {i.policy for i in loaded.items}
                if (by := unknown.blocked_by(name))
            }
            refusals = self._refuse_policies(session, loaded.plan_id, caps, refused)
            held_back = {str(v.policy) for v in caps} | set(refused)
            items = [item for item in loaded.items if item.policy not in held_back]
            rechecker = Rechecker(policy_set)
            db = session.db

            def decided_again(item: PlanItem) -> Verdict:
                return refreshed.verdict(item, db, rechecker, self.clock())

            await self._execute(
                session, client, result, items, loaded.plan_id, decided_again, loaded.as_of
            )
            record.holds_blocked(session.audit, session.run_id, list(loaded.document["blocked"]))
            mark_plan_applied(session.db, loaded.plan_id, session.run_id)
            self._end_refused(result, refusals)
        return result

    async def start_up(self) -> int:
        """The daemon's start-up check: databases and token; reconcile intents left pending.

        Returns how many pending intents were reconciled; a start-up with none records no run.
        Raises when the databases cannot be opened, no access token can be had, or a pending
        intent cannot be resolved.
        """
        policy_set = self.load_policies()
        pending = lambda audit: bool(audit.pending_intents())  # noqa: E731
        async with (
            self._api() as client,
            self._session(policy_set, "daemon start-up", api=client, opens_run=pending) as session,
        ):
            await client.auth.access_token()
            if session is None:
                return 0
            result = RunResult.of(session)
            result.reconciled = await self._reconcile(session, client)
            return result.reconciled.pending if result.reconciled else 0

    def _refuse_over_run_cap(self, session: Session, items: list[PlanItem], plan_id: str) -> None:
        """Over `RETENTION_MAX_DELETIONS_PER_RUN` the whole run is refused, before any DELETE."""
        found = run_cap_violation(items, max_per_run=self.settings.max_deletions_per_run)
        if found is not None:
            refusal = preflight.cap_refusal([found], "plan refused by the run's cap: ")
            session.audit.refused(
                run_id=session.run_id,
                reason="global_cap",
                details={"message": refusal.message, "plan_id": plan_id, **found.as_event()},
            )
            raise refusal

    def _refuse_policies(
        self,
        session: Session,
        plan_id: str,
        caps: Sequence[CapViolation],
        unknown: Mapping[str, str],
    ) -> list[Refused]:
        """One `refused` event per policy refused on its own; the others' removals proceed."""
        refusals: list[Refused] = []
        for violation in caps:
            refusal = Refused(
                f"policy {violation.policy} refused: {violation.describe()}",
                hint=violation.hint(),
                reason="cap",
            )
            session.audit.refused(
                run_id=session.run_id,
                reason="cap",
                details={"message": refusal.message, "plan_id": plan_id, **violation.as_event()},
            )
            refusals.append(refusal)
        for name, by in sorted(unknown.items()):
            if not by.startswith("unknown:"):
                continue
            missing = by.removeprefix("unknown:")
            refusal = Refused(
                f"policy {name} refused: it names {missing!r}, which the account does not have",
                hint=f"fix the name in policy {name} (`retention validate` shows where), or run "
                "`retention inventory` if it is new",
                reason="unknown_name",
            )
            session.audit.refused(
                run_id=session.run_id,
                reason="unknown_name",
                details={"message": refusal.message, "plan_id": plan_id, "policy": name},
            )
            refusals.append(refusal)
        for refusal in refusals:
            log.warning("policy refused on its own", reason=refusal.reason, error=refusal.message)
        return refusals

    def _end_refused(self, result: RunResult, refusals: list[Refused]) -> None:
        """After the other policies' removals, a run with a refused policy ends exit 3."""
        if refusals and result.result == "ok":
            result.result = "refused"
            first = refusals[0]
            raise Refused(
                "; ".join(r.message for r in refusals)
                + " (the other policies' removals were made)",
                hint=first.hint,
                reason=first.reason,
            )

    def _approve(
        self,
        session: Session,
        plan_id: str,
        plan_hash: str,
        approved_by: str,
        as_of: datetime | None,
    ) -> None:
        session.audit.plan_approved(
            run_id=session.run_id,
            plan_id=plan_id,
            plan_hash=plan_hash,
            approved_by=approved_by,
            as_of=as_of,
        )

    async def _reconcile(self, session: Session, client: GoToClient) -> ReconcileReport | None:
        return await execution.reconcile_pending(session, lambda: self._executor(session, client))

    def _executor(
        self, session: Session, client: GoToClient, plan_id: str = "reconcile"
    ) -> Executor:
        return execution.build_executor(
            session, ApiRemovals(client, session.db), plan_id, stop_grace=self.stop_grace
        )

    async def _execute(  # noqa: PLR0917
        self,
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
            stop_grace=self.stop_grace,
            recheck=recheck,
            clock_skew=client.clock_skew_seconds,
            as_of=as_of,
        )
        result.execution = await execution.execute(executor, items, self.on_progress)
        session.tally.error = result.execution.halted
        if result.execution.halted:
            result.result = "halted"
        elif not result.execution.ok:
            result.result = "failed"


def _in_scope(loaded: LoadedPlan) -> dict[str, int]:
    per_policy = loaded.document["summary"].get("per_policy", {})
    return {name: totals.get("in_scope", 0) for name, totals in per_policy.items()}


def _shorten(stopped: asyncio.Future[Any], client: GoToClient, grace: float) -> None:
    """On a stop, no call waits longer than the grace; the client's own `stop` event, when it
    has one, also prevents retries and new attempts."""
    if stopped.cancelled():
        return
    client.call_deadline = min(client.call_deadline, grace)
    stop = getattr(client, "stop", None)
    if isinstance(stop, asyncio.Event):
        stop.set()
