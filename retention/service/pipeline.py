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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlite_utils import Database

from retention.alerts import owners
from retention.audit.log import AuditLog
from retention.engine import inventory
from retention.engine.caps import CapViolation
from retention.engine.decide import decide
from retention.engine.execute import Executor, Gate, Verdict
from retention.engine.plan import Plan, plan_within_caps
from retention.engine.planfile import LoadedPlan
from retention.engine.planitem import PlanItem
from retention.engine.policy_checks import known_names
from retention.engine.reappear import record_reappeared
from retention.engine.recheck import Rechecker
from retention.engine.reconcile import ReconcileReport
from retention.engine.refresh import fresh_record, refresh_items
from retention.engine.removal import ApiRemovals
from retention.engine.scan import ScanReport
from retention.engine.state import account_of, mark_plan_applied, record_plan
from retention.errors import InvalidInput
from retention.goto.client import GoToClient
from retention.goto.factory import client_from_settings
from retention.goto.http import Transport
from retention.policy import PolicySet, load_policy_set
from retention.policy.names import unknown_names
from retention.policy.notice import check_notice_days
from retention.service import execution, preflight, record
from retention.service import preview as previews
from retention.service.checks import PREFLIGHT
from retention.service.logging import register_secret
from retention.service.reading import require_complete, scan_as_set, unless_stopped
from retention.service.refusals import (
    declined,
    end_refused,
    refuse_over_run_cap,
    refuse_policies,
)
from retention.service.result import RunResult
from retention.service.session import Check, LockWait, Session, open_session
from retention.settings import Settings

__all__ = ["STOP_GRACE_SECONDS", "Pipeline", "RunResult"]

Clock = Callable[[], datetime]
# Asked with the plan document before anything is removed; False declines (exit 3).
Confirm = Callable[[Mapping[str, Any]], bool]
# Calls in flight after a stop get at most this long (DECISIONS: below TimeoutStopSec=120).
STOP_GRACE_SECONDS = 30.0


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
    transport: Transport | None = None
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
        policy_set = self.policy_set or load_policy_set([self.settings.policy_dir])
        check_notice_days(policy_set, self.settings.owner_notice_days)
        return policy_set

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

    async def refresh(self, client: GoToClient, db: Database) -> ScanReport:
        """Bring the inventory up to date; refuse to go on from an incomplete one."""
        scanning = scan_as_set(client, db, self.settings, now=self.clock())
        report = await (unless_stopped(scanning, self.stop) if self.stoppable_scan else scanning)
        self.on_scan(report)
        return require_complete(report)

    def make_plan(
        self,
        db: Database,
        policy_set: PolicySet,
        *,
        as_of: datetime,
        selected: list[str] | None = None,
        account_key: str | None = None,
        awaiting: bool = True,
        **shown: Any,
    ) -> Plan:
        """Decide over the whole inventory and gather the plan (pure but for reading the db).

        The plan records `account_key` (the account the scan read), else the state's account;
        `shown` passes `subject`, `offline` and `inventory_at` to build_plan. With `awaiting`,
        removals a `notice: required` policy may not make yet are `blocked` (before the caps are
        counted: a cap counts what the run would remove). Without it, the plan is what the
        policies alone call for by `as_of`, nothing held for notice and no cap counted: what owner
        notices announce.
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

        def held(plan: Plan) -> Plan:
            return owners.awaiting_notice(plan, policy_set, db, self.settings)

        return plan_within_caps(
            lambda: decide(inventory.iter_sessions(db), policy_set, as_of),
            policy_set,
            refused=refused,
            hold=held if awaiting else None,
            caps=awaiting,
            plan_id=f"plan-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
            created_at=now,
            as_of=as_of,
            selected=selected,
            max_clock_skew=timedelta(seconds=self.settings.max_clock_skew),
            api_base_url=self.settings.api_base_url,
            account_key=account_key or account_of(db),
            **shown,
        )

    # `retention plan` (service/preview.py): read the inventory (scan, or the last one
    # offline), decide, and (with --out) record the plan.
    preview = previews.preview

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
        async with (
            self._api() as client,
            self._session(policy_set, trigger, preflight.RUN_CHECKS, api=client) as session,
        ):
            assert session is not None
            result = RunResult.of(session)
            result.reconciled = await self._reconcile(session, client)
            await self.refresh(client, session.db)
            record_reappeared(
                session.db,
                session.audit,
                run_id=session.run_id,
                grace_seconds=self.settings.reappear_grace_seconds,
            )
            plan = result.plan = self.make_plan(
                session.db,
                policy_set,
                as_of=self.clock(),
                selected=list(selected) if selected else None,
                subject=session.audit.subject_value,
            )
            document = plan.document()
            result.planned = len(plan.items)
            refuse_over_run_cap(session, plan.items, plan.plan_id)
            refusals = refuse_policies(session, plan.plan_id, plan.cap_refusals, plan.refused)
            if confirm is not None and not confirm(document):
                declined(session, result, plan.plan_id)
            await owners.send_owner_notices(session, self.make_plan)
            record_plan(session.db, plan.plan_id, document["plan_hash"], plan.created_at)
            record.plan_approved(session.audit, session.run_id, document, approved_by, plan.as_of)
            again = self._decided_again(session)
            await self._execute(
                session, client, result, plan.items, plan.plan_id, again, plan.as_of
            )
            record.holds_blocked(session.audit, session.run_id, plan.blocked)
            mark_plan_applied(session.db, plan.plan_id, session.run_id)
            end_refused(result, refusals)
        return result

    async def apply(
        self, loaded: LoadedPlan, *, confirm: Confirm | None, approved_by: str
    ) -> RunResult:
        """`retention apply PLAN_FILE`: check the plan, approve it, re-read its facts, execute
        each item that is still due, decided again when it is sent."""
        policy_set = self.load_policies()
        approvals = preflight.ApprovalsCheck(loaded)
        checks = preflight.plan_checks(loaded, approvals)
        async with (
            self._api() as client,
            self._session(policy_set, "apply", checks, api=client) as session,
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
            )
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
            per_policy = self.violations(loaded.items, policy_set, loaded.in_scope)
            caps = [v for v in per_policy if v.policy is not None]
            refused = {
                name: by
                for name in {i.policy for i in loaded.items}
                if (by := unknown.blocked_by(name))
            }
            refusals = refuse_policies(session, loaded.plan_id, caps, refused)
            held_back = {str(v.policy) for v in caps} | set(refused)
            items = [item for item in loaded.items if item.policy not in held_back]
            rechecker = self._rechecker(session)
            db = session.db

            def decided_again(item: PlanItem) -> Verdict:
                return refreshed.verdict(item, db, rechecker, self.clock())

            await self._execute(
                session, client, result, items, loaded.plan_id, decided_again, loaded.as_of
            )
            record.holds_blocked(session.audit, session.run_id, list(loaded.document["blocked"]))
            mark_plan_applied(session.db, loaded.plan_id, session.run_id)
            end_refused(result, refusals)
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

    async def _reconcile(self, session: Session, client: GoToClient) -> ReconcileReport | None:
        return await execution.reconcile_pending(session, lambda: self._executor(session, client))

    def _executor(self, session: Session, client: GoToClient) -> Executor:
        """The executor of intents a crash left pending: one sent again is decided again."""
        return execution.build_executor(
            session,
            ApiRemovals(client, session.db),
            "reconcile",
            stop_grace=self.stop_grace,
            recheck=self._decided_again(session),
            clock_skew=client.clock_skew_seconds,
        )

    def _decided_again(self, session: Session) -> Gate:
        """Each item decided again on the inventory's facts, this run's policies and now."""
        rechecker, db = self._rechecker(session), session.db
        return lambda item: rechecker(item, fresh_record(db, item.session_id), self.clock())

    def _rechecker(self, session: Session) -> Rechecker:  # the run's policies, notices checked
        policies = session.policy_set
        return Rechecker(policies, owners.gate(session.db, policies, self.settings))

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
        result.executed(await execution.execute(executor, items, self.on_progress))


def _shorten(stopped: asyncio.Future[Any], client: GoToClient, grace: float) -> None:
    """On a stop, no call waits longer than the grace; the client's own `stop` event, when it
    has one, also prevents retries and new attempts."""
    if stopped.cancelled():
        return
    client.call_deadline = min(client.call_deadline, grace)
    stop = getattr(client, "stop", None)
    if isinstance(stop, asyncio.Event):
        stop.set()
