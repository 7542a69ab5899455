"""`retention daemon`: scheduled runs under systemd, with reload, graceful stop, metrics and health.

    start-up: policies, schedules, metrics socket ► lock, databases, token, reconcile ► READY=1
    each due schedule ► one run of its policies (never two at once; one due meanwhile is
        queued and runs next) ► metrics, health, STATUS=
    SIGHUP ► reload policies (an invalid set is rejected, the old one stays)
    SIGTERM ► STOPPING=1 ► the run in flight finishes its removals and records them ► exit 0

With RETENTION_CONSOLE_ADDRESS, the compliance officer's console (retention/console/) is
served from the same loop as `/metrics`.

The state directory's lock is held only while a run (or the start-up check) works, so that
`retention plan`, `apply` and `run` can be used between scheduled runs; while a run holds it
they stop with a message naming the daemon. A daemon run that finds a manual one holding it
waits inside its session's opening until the lock is free (or a stop comes), and then holds it
for the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from retention.alerts import runs as alerts
from retention.audit.log import AuditLog
from retention.console.app import console_app
from retention.engine.scan import ScanReport
from retention.engine.state import open_state_db
from retention.errors import Refused, RetentionError, RuntimeFailure
from retention.goto.client import GoToClient
from retention.goto.http import Transport
from retention.policy import PolicyError, PolicySet, load_policy_set
from retention.policy.notice import check_notice_days
from retention.service import pipeline, runmetrics
from retention.service.checks import RecordWatch, preflight
from retention.service.context import MetricsSink, RunContext
from retention.service.lock import InstanceLocked
from retention.service.memory import return_memory
from retention.service.metrics import (
    RUN_RESULTS,
    HealthState,
    Metrics,
    RunState,
    serve_app,
    serve_metrics,
)
from retention.service.notify import Notifier, feed_watchdog, monotonic_usec
from retention.service.pipeline import RunResult
from retention.service.progress import logging_progress, progress_logged
from retention.service.review import scheduled_run
from retention.service.schedule import (
    JOB_EVENTS,
    RunQueue,
    Schedule,
    log_job_event,
    parse_schedule,
    policies_of,
    schedules_for,
    when,
)
from retention.service.statedir import LockWait, RunStopped
from retention.service.timelymetrics import TimelinessMetrics
from retention.settings import Settings

log = structlog.get_logger("retention.daemon")

# A run due while the loop was busy or the host asleep still happens within this delay.
MISFIRE_GRACE_SECONDS = 3600
CONSOLE_SETTING = "RETENTION_CONSOLE_ADDRESS"
_RESULTS = RUN_RESULTS


class Daemon:
    """The long-running service: one instance per state directory."""

    def __init__(
        self,
        settings: Settings,
        notifier: Notifier,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        transport: Transport | None = None,
        progress_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.clock = clock
        # Paces the progress lines a run logs off a terminal (the journal, a pipe).
        self.progress_clock = progress_clock
        self.transport = transport
        self.metrics = Metrics(clock)
        self.timeliness = TimelinessMetrics(self.metrics.registry)
        self.health = HealthState()
        self.audit_follower = runmetrics.AuditFollower(settings)
        self.record_watch = RecordWatch()
        self.policy_set: PolicySet | None = None
        self.schedules: list[Schedule] = []
        self.scheduler: AsyncIOScheduler | None = None
        self.current: RunContext | None = None
        self.queue = RunQueue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._terminating = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: str = "no run yet"
        # What the clients and scans of the run in flight did, for the metrics at its end.
        self._clients: list[GoToClient] = []
        self._scans: list[ScanReport] = []
        self._audits: list[AuditLog] = []
        self.crashed: Exception | None = None

    # --- life cycle -----------------------------------------------------------------------

    async def serve(self) -> None:
        """Start, run the schedules until SIGTERM or SIGINT, then stop gracefully."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.terminate, signum)
        loop.add_signal_handler(signal.SIGHUP, self._spawn_reload)
        self.load()
        self._remember()
        watchdog = asyncio.create_task(feed_watchdog(self.notifier))
        try:
            address = self.settings.metrics_address
            async with (
                serve_metrics(address, self.metrics, self.health) as (host, port),
                self.console(),
            ):
                log.info("metrics served", address=f"{host}:{port}", paths=["/metrics", "/healthz"])
                if await self._start_up():
                    self._start_scheduler(loop)
                    await self._terminating.wait()
                await self._stop()
        finally:
            watchdog.cancel()
            self.notifier.close()

    @contextlib.asynccontextmanager
    async def console(self) -> AsyncIterator[None]:
        """The compliance officer's console on RETENTION_CONSOLE_ADDRESS (none when unset),
        served from this loop as `/metrics` is."""
        address = self.settings.console_address
        if not address:
            yield
            return
        app = console_app(self.settings, self.health.report, self.clock)
        async with serve_app(address, app, CONSOLE_SETTING) as (host, port):
            log.info("console served", address=f"{host}:{port}")
            yield

    def load(self) -> None:
        """The settings' schedule and mode checked, the policy folder read, its schedules."""
        parse_schedule(self.settings.default_schedule)
        self.settings.check_daemon_mode()
        self.policy_set = load_policy_set([self.settings.policy_dir])
        self.schedules = schedules_for(self.policy_set, self.settings.default_schedule)

    async def run_due(self, spec: str) -> None:
        """What the scheduler does when the schedule `spec` fires, waiting for the run to end."""
        await self._due(spec)
        await self._idle.wait()

    async def _start_up(self) -> bool:
        """The databases, the token and recovery; False when a stop came first."""
        self.notifier.status("start-up: checking databases and token")
        self.audit_follower.skip_to_end()
        self.timeliness.skip_to_end(self.settings)
        self.current = ctx = self._context("start-up")
        started = self.clock()
        try:
            reconciled = await pipeline.start_up(ctx)
        except RunStopped:
            return False
        except RetentionError as exc:
            if exc.reason is None:
                raise
            # A refusal (the record does not verify, a name is unknown) is the operator's to
            # fix: the daemon stays up, reports it, and every run refuses until it is fixed.
            log.warning("start-up refused", reason=exc.reason, error=exc.message)
            self._record("refused", started, exc.message, None, exc.reason)
            return not self._terminating.is_set()
        finally:
            self.current = None
            self._absorb()
        log.info("start-up checks passed", reconciled_intents=reconciled)
        return not self._terminating.is_set()

    def _start_scheduler(self, loop: asyncio.AbstractEventLoop) -> None:
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        scheduler.add_listener(log_job_event, JOB_EVENTS)
        scheduler.start()
        self.scheduler = scheduler
        self._install_jobs()
        self.health.scheduler_running = True
        self.notifier.ready(self._status())
        assert self.policy_set is not None
        log.info(
            "daemon ready",
            policies=[policy.name for policy in self.policy_set.enabled_policies],
            schedules={s.spec: list(s.policies) for s in self.schedules},
            next_run=when(self._next_run()),
        )

    def terminate(self, signum: int) -> None:
        """SIGTERM/SIGINT: no new run starts; the one in flight stops after its removals."""
        if self._terminating.is_set():
            return
        log.info("stopping", signal=signal.Signals(signum).name, run_in_flight=bool(self.current))
        self._terminating.set()
        if self.current is not None:
            self.current.stop.set()
        self.notifier.stopping("stopping: letting removals in flight finish")

    async def _stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.pause()
        # Before the scheduler's shutdown, which would cancel coroutines it started.
        await self._idle.wait()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        self.health.scheduler_running = False
        log.info("daemon stopped", last=self._last)
        if self.crashed is not None:
            raise RuntimeFailure(
                f"a scheduled run crashed: {self.crashed!r}",
                hint="see the traceback in the log (journalctl -u retention)",
            ) from self.crashed

    # --- runs -----------------------------------------------------------------------------

    def _context(self, purpose: str, policy_set: PolicySet | None = None) -> RunContext:
        """A run's context: the set read for it, waiting for the lock, stopping on SIGTERM,
        counted in the metrics."""

        def waiting(exc: InstanceLocked) -> None:
            log.warning("waiting for the state directory", holder=exc.holder.describe())
            self.notifier.status(f"{purpose} waiting for {exc.holder.describe()}")

        ctx = RunContext(
            self.settings,
            clock=self.clock,
            transport=self.transport,
            policy_set=policy_set or self.policy_set,
            lock=LockWait(None, on_wait=waiting),
            stoppable_scan=True,
            metrics=MetricsSink(
                on_client=self._clients.append,
                on_scan=self._scans.append,
                on_audit=self._audits.append,
            ),
            checks=preflight(self.record_watch),
        )
        if self._terminating.is_set():
            ctx.stop.set()
        return ctx

    async def _due(self, spec: str) -> None:
        """A schedule is due: run its policies now, or queue them behind the run in flight
        (a policy that run already applies is covered by it)."""
        if self._terminating.is_set():
            return
        policies = policies_of(self.schedules, spec)
        offered = self.queue.offer(policies)
        if offered == "start":
            self._start_run(spec, policies)
        elif policies:
            log.info(
                "schedule due while a run is in flight: "
                + ("covered by it" if offered == "covered" else "queued to run next"),
                schedule=spec,
                policies=sorted(policies),
            )

    def _start_run(self, spec: str, policies: frozenset[str]) -> None:
        self.current = self._context("scheduled run")
        self.queue.started(policies)
        self._idle.clear()
        task = asyncio.create_task(self._run(self.current, spec, policies))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, ctx: RunContext, spec: str, policies: frozenset[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(self.settings.run_deadline, self._deadline_passed, ctx)
        started = self.clock()
        result: RunResult | None = None
        state: RunState = "failed"
        error: str | None = None
        reason: str | None = None
        try:
            log.info("scheduled run starting", schedule=spec, policies=sorted(policies))
            ctx = self.current = dataclasses.replace(ctx, policy_set=await self._read_folder())
            selected = self._still_defined(policies)
            with progress_logged(clock=self.progress_clock) as logged:
                ctx = self.current = logging_progress(ctx, logged)
                result = await scheduled_run(ctx, selected)
            state = _RESULTS[result.result]
            error = result.execution.halted
        except RunStopped as exc:
            state, error = "failed", exc.message
            log.info("scheduled run stopped before its removals", schedule=spec, error=error)
        except RetentionError as exc:
            refused = isinstance(exc, Refused) or exc.reason is not None
            state, error, reason = ("refused" if refused else "failed"), exc.message, exc.reason
            method = log.warning if state == "refused" else log.error
            method(
                "scheduled run did not complete",
                schedule=spec,
                result=state,
                reason=reason,
                error=error,
            )
        except Exception as exc:
            # Unexpected: crash loudly, so that systemd restarts a fresh process.
            log.exception("scheduled run crashed", schedule=spec)
            error = repr(exc)
            self.crashed = exc
            self.terminate(signal.SIGTERM)
        finally:
            deadline.cancel()
            self._record(state, started, error, result, reason)
            self.current = None
            queued = self.queue.finished(self.schedules)
            if queued and not self._terminating.is_set():
                self._start_run("queued", queued)
            else:
                self._idle.set()

    async def _read_folder(self) -> PolicySet:
        """The policy folder as it is now, read at the start of every run (SIGHUP only makes it
        sooner): the run uses this set, and the jobs follow it. A folder that does not load
        refuses the run (`invalid_policies`), in both modes, until it loads again."""
        try:
            policy_set = load_policy_set([self.settings.policy_dir])
            check_notice_days(policy_set, self.settings.owner_notice_days)
        except PolicyError as exc:
            self._reject(exc)
            refusal = Refused(
                f"the policy folder {self.settings.policy_dir} does not load: "
                f"{len([p for p in exc.problems if p.severity == 'error'])} problem(s); "
                "no run is made until it does",
                hint="`retention validate` names each problem; fix them (SIGHUP reads the folder "
                "at once, or the next scheduled run does)",
                reason="invalid_policies",
            )
            db = open_state_db(self.settings.state_db)
            try:
                await alerts.refused_at_opening(
                    self.settings, db, refusal, trigger="daemon", clock=self.clock
                )
            finally:
                db.close()
            raise refusal from None
        if policy_set.digest != (self.policy_set.digest if self.policy_set else None):
            self._take(policy_set)
        return policy_set

    def _still_defined(self, policies: frozenset[str]) -> list[str]:
        """The schedule's policies that the folder still defines; a vanished one is dropped."""
        assert self.policy_set is not None
        defined = {policy.name for policy in self.policy_set.enabled_policies}
        for gone in sorted(policies - defined):
            log.warning(
                "a scheduled policy is no longer in the folder: its job is dropped", policy=gone
            )
        return sorted(policies & defined)

    def _remember(self) -> None:
        """The last run before this process (the daemon's or a manual one), from the record."""
        recorded = runmetrics.last_recorded_run(self.settings)
        if recorded is None:
            return
        at = recorded.finished_at
        self.metrics.remember_run(recorded.result, at, recorded.duration_seconds)
        self.health.record_run(recorded.result, at, recorded.error, recorded.reason)
        self._last = f"last run {recorded.result} at {when(at)}"

    def _deadline_passed(self, ctx: RunContext) -> None:
        log.error(
            "run deadline passed: no further removal is started",
            run_deadline_s=self.settings.run_deadline,
        )
        ctx.stop.set()

    def _record(
        self,
        state: RunState,
        started: datetime,
        error: str | None,
        result: RunResult | None,
        reason: str | None = None,
    ) -> None:
        finished = self.clock()
        self.metrics.record_run(state, finished, (finished - started).total_seconds(), reason)
        if result is not None and result.plan is not None:
            self.metrics.set_unknown(result.plan.summary()["unknown_by"])
        self._absorb()
        self.health.record_run(state, finished, error, reason)
        if result is not None and result.plan is not None:
            self.health.notice_unsent = result.notice_unsent
        counts = result.counts() if result else {}
        done = ", ".join(f"{counts[k]} {k}" for k in ("deleted", "already_absent") if counts.get(k))
        self._last = f"last run {state} at {when(finished)}" + (f" ({done})" if done else "")
        self._publish_next_run()
        return_memory()

    def _absorb(self) -> None:
        for client in self._clients:
            runmetrics.absorb_requests(self.metrics, client.stats)
        runmetrics.absorb_scans(self.metrics, self._scans)
        runmetrics.absorb_record(self.metrics, self._clients, self._audits, self.record_watch.ok)
        self._clients.clear()
        self._scans.clear()
        self._audits.clear()
        self.audit_follower.absorb(self.metrics)
        self.timeliness.absorb(self.settings, self.clock())
        runmetrics.absorb_token_age(self.metrics, self.settings)

    # --- schedules and reload -------------------------------------------------------------

    def _install_jobs(self) -> None:
        """Make the scheduler's jobs match `self.schedules`; unchanged ones keep their timing."""
        scheduler = self.scheduler
        assert scheduler is not None
        wanted = {schedule.job_id: schedule for schedule in self.schedules}
        for job in scheduler.get_jobs():
            if job.id not in wanted:
                job.remove()
        for job_id, schedule in wanted.items():
            if scheduler.get_job(job_id) is None:
                scheduler.add_job(
                    self._due,
                    schedule.trigger(),
                    args=[schedule.spec],
                    id=job_id,
                    name=f"retention run ({schedule.spec})",
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=MISFIRE_GRACE_SECONDS,
                )
        if not wanted:
            log.warning("no enabled delete policy: nothing is scheduled")
        self._publish_next_run()

    def _spawn_reload(self) -> None:
        task = asyncio.create_task(self.reload())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> None:
        """SIGHUP: load the policy folder again; a valid set replaces the old one and its jobs."""
        self.notifier.reloading(monotonic_usec())
        try:
            policy_set = load_policy_set([self.settings.policy_dir])
        except PolicyError as exc:
            self._reject(exc)
        else:
            self._take(policy_set)
        self.notifier.ready(self._status())

    def _take(self, policy_set: PolicySet) -> None:
        """A set that loaded: it is in force, and the jobs follow its schedules."""
        self.policy_set = policy_set
        self.schedules = schedules_for(policy_set, self.settings.default_schedule)
        if self.scheduler is not None:
            self._install_jobs()
        log.info(
            "policies reloaded",
            policies=[policy.name for policy in policy_set.enabled_policies],
            schedules={s.spec: list(s.policies) for s in self.schedules},
            digest=policy_set.digest,
        )

    def _reject(self, error: PolicyError) -> None:
        """Log every problem of a rejected set, one line each, and that the old set stays."""
        for problem in error.errors:
            log.error("policy problem", problem=str(problem))
        log.error(
            "the policy folder does not load: every run is refused until it does",
            problems=len(error.errors),
            schedules=[s.spec for s in self.schedules],
        )

    # --- status ---------------------------------------------------------------------------

    def _next_run(self) -> datetime | None:
        if self.scheduler is None:
            return None
        times = [job.next_run_time for job in self.scheduler.get_jobs() if job.next_run_time]
        return min(times) if times else None

    def _publish_next_run(self) -> None:
        upcoming = self._next_run()
        self.metrics.set_next_run(upcoming)
        self.health.next_run_at = upcoming
        self.notifier.status(self._status())

    def _status(self) -> str:
        return f"{self._last}; next run {when(self._next_run())}"
