"""Prometheus metrics and the health endpoint, served on the daemon's own event loop.

`/metrics` and `/healthz` are a small Starlette app that uvicorn serves as part of the
daemon's asyncio loop, not prometheus_client's server thread: a thread would keep answering
200 while the loop that runs the scheduler and feeds the watchdog hangs, whereas here a hung
loop leaves the probe unanswered, which is the truth. Each `Metrics` owns its registry (not
the process-wide default one), so that tests and several instances stay apart.
"""

from __future__ import annotations

import math
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from retention.errors import RuntimeFailure, SettingsError
from retention.service.logging import redact_text

RunState = Literal["never", "ok", "failed", "refused"]
RUN_STATES: tuple[RunState, ...] = ("never", "ok", "failed", "refused")
# A run's result (run_finished) as health and metrics report it.
RUN_RESULTS: dict[str, RunState] = {
    "ok": "ok",
    "declined": "ok",
    "refused": "refused",
    "halted": "failed",
    "failed": "failed",
}
ADDRESS_SETTING = "RETENTION_METRICS_ADDRESS"
DISTRIBUTION = "goto-retention"


def installed_version() -> str:
    """The installed distribution's version (`unknown` when run from sources never installed)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"


def _unknown_yet(name: str, documentation: str, registry: CollectorRegistry) -> Gauge:
    """A gauge that reads NaN until its first measurement."""
    gauge = Gauge(name, documentation, registry=registry)
    gauge.set(math.nan)
    return gauge


class Metrics:
    """Every metric the service exports, with the calls the pipeline makes to update them.

    `endpoint` labels are route templates such as `/organizers/{organizerKey}/sessions`,
    never concrete paths: one series per organizer would grow without bound.
    """

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        self._token_issued_at: datetime | None = None
        self._notify_failures_seen = 0
        self._unknown_reasons: set[str] = set()
        reg = self.registry
        # What Prometheus users expect of any service: its version, and the process's own
        # CPU, memory and file descriptors (`process_*`) and interpreter (`python_info`).
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        Gauge(
            "retention_build_info",
            "Always 1; the label names the version running",
            ["version"],
            registry=reg,
        ).labels(version=installed_version()).set(1)
        self.removals = Counter(
            "retention_removals",
            "Removals by action, outcome and the policy that caused them",
            ["action", "outcome", "policy"],
            registry=reg,
        )
        self.api_requests = Counter(
            "retention_api_requests",
            "GoTo API requests by endpoint and HTTP status",
            ["endpoint", "status"],
            registry=reg,
        )
        self.api_rate_limited = Counter(
            "retention_api_rate_limited",
            "GoTo API answers 429 (rate limited)",
            ["endpoint"],
            registry=reg,
        )
        self.api_retries = Counter(
            "retention_api_retries", "GoTo API requests retried", ["endpoint"], registry=reg
        )
        self.scan_sessions = Counter(
            "retention_scan_sessions", "Sessions read from the API by scans", registry=reg
        )
        self.pending_intents = Gauge(
            "retention_pending_intents", "Removals begun but without an outcome", registry=reg
        )
        self.runs = Counter("retention_runs", "Runs by result", ["result"], registry=reg)
        self.sessions_unknown = Gauge(
            "retention_sessions_unknown",
            "Sessions the last plan kept because a fact a policy reads is unknown, by that fact",
            ["reason"],
            registry=reg,
        )
        self.last_run_result = Enum(
            "retention_last_run_result",
            "Result of the last run",
            states=list(RUN_STATES),
            registry=reg,
        )
        self.last_run_timestamp = Gauge(
            "retention_last_run_timestamp_seconds", "When the last run ended", registry=reg
        )
        self.last_run_duration = Gauge(
            "retention_last_run_duration_seconds", "How long the last run took", registry=reg
        )
        self.next_run_timestamp = Gauge(
            "retention_next_run_timestamp_seconds", "When the next run is due", registry=reg
        )
        self.refresh_token_age = Gauge(
            "retention_refresh_token_age_seconds",
            "Age of the refresh token in use (NaN when unknown); GoTo's expire after ~30 days",
            registry=reg,
        )
        self.refresh_token_age.set_function(self._token_age)
        self.refusals = Counter(
            "retention_refusals", "Runs refused, by reason code", ["reason"], registry=reg
        )
        self.audit_ok = _unknown_yet(
            "retention_audit_ok",
            "1 while the audit record verifies, 0 while it does not and runs refuse (NaN: not "
            "checked yet)",
            reg,
        )
        self.clock_skew = _unknown_yet(
            "retention_clock_skew_seconds",
            "Host clock minus the API's Date, as the latest run measured it (NaN: unknown)",
            reg,
        )
        self.witness_failures = Counter(
            "retention_witness_failures",
            "Checkpoint lines the witness command (checkpoint_command) failed to take",
            registry=reg,
        )
        self.notify_failures = Counter(
            "retention_notify_failures",
            "Alerts an Apprise URL (RETENTION_NOTIFY) could not take",
            registry=reg,
        )

    def _token_age(self) -> float:
        if self._token_issued_at is None:
            return math.nan
        return (self._clock() - self._token_issued_at).total_seconds()

    def observe_api_request(self, endpoint: str, status: int | str) -> None:
        """Count one answered request (`status` "error" when no answer came)."""
        self.api_requests.labels(endpoint=endpoint, status=str(status)).inc()
        if str(status) == "429":
            self.api_rate_limited.labels(endpoint=endpoint).inc()

    def observe_retry(self, endpoint: str) -> None:
        """Count one retry of a request to `endpoint`."""
        self.api_retries.labels(endpoint=endpoint).inc()

    def observe_removal(self, action: str, outcome: str, policy: str) -> None:
        """Count one final outcome (`deleted`, `already_absent`, `failed`, `skipped_hold`)."""
        self.removals.labels(action=action, outcome=outcome, policy=policy).inc()

    def observe_scanned(self, sessions: int) -> None:
        """Count the sessions one scan window returned."""
        self.scan_sessions.inc(sessions)

    def set_unknown(self, by_reason: Mapping[str, int]) -> None:
        """The last plan's sessions kept unknown, per unknown fact (a reason no longer seen
        reads 0, so that a fail-closed rule that silences an account shows, and its end too)."""
        self._unknown_reasons.update(by_reason)
        for reason in self._unknown_reasons:
            self.sessions_unknown.labels(reason=reason).set(by_reason.get(reason, 0))

    def set_pending_intents(self, count: int) -> None:
        """The number of intents still without an outcome."""
        self.pending_intents.set(count)

    def record_run(
        self,
        result: RunState,
        finished_at: datetime,
        duration_seconds: float,
        reason: str | None = None,
    ) -> None:
        """The end of a run: its result (and a refusal's reason code), end time and duration."""
        self.runs.labels(result=result).inc()
        if result == "refused":
            self.refusals.labels(reason=reason or "refused").inc()
        self.remember_run(result, finished_at, duration_seconds)

    def remember_run(self, result: RunState, finished_at: datetime, duration: float) -> None:
        """The last run's result, end and duration, counting no run (a restart reads them)."""
        self.last_run_result.state(result)
        self.last_run_timestamp.set(finished_at.timestamp())
        self.last_run_duration.set(duration)

    def set_next_run(self, at: datetime | None) -> None:
        """When the scheduler will run next (NaN when nothing is scheduled)."""
        self.next_run_timestamp.set(math.nan if at is None else at.timestamp())

    def set_audit_ok(self, ok: bool | None) -> None:
        """Whether the record verified at the last check (None: not checked yet)."""
        self.audit_ok.set(math.nan if ok is None else float(ok))

    def set_clock_skew(self, seconds: float) -> None:
        """The latest skew a client measured between the host clock and the API's `Date`."""
        self.clock_skew.set(seconds)

    def set_refresh_token_issued(self, at: datetime | None) -> None:
        """When the refresh token in use was obtained; its age is computed at each scrape."""
        self._token_issued_at = at

    def absorb_notify_failures(self, total: int) -> None:
        """Count the alerts undelivered since the last call (`total`: the process's so far)."""
        if total > self._notify_failures_seen:
            self.notify_failures.inc(total - self._notify_failures_seen)
            self._notify_failures_seen = total

    def render(self) -> bytes:
        """The registry in the Prometheus text exposition format."""
        return generate_latest(self.registry)


@dataclass
class HealthState:
    """What `/healthz` reports; the daemon updates it as the scheduler and runs change."""

    scheduler_running: bool = False
    last_run_result: RunState = "never"
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    last_error: str | None = None
    last_reason: str | None = None
    # Removals waiting on owner notices that could not be sent, as the last run counted them.
    notice_unsent: int = 0

    def record_run(
        self, result: RunState, at: datetime, error: str | None, reason: str | None
    ) -> None:
        """The end of a run; a refusal is reported until a later run succeeds."""
        self.last_run_result = result
        self.last_run_at = at
        self.last_error = error
        self.last_reason = reason if result == "refused" else None

    def problems(self) -> list[str]:
        """Why the service is unhealthy; empty when healthy.

        A refused run (the record does not verify, a clock off, a name unknown, a cap) removed
        nothing it was asked to: someone must look, so it is unhealthy until a run succeeds.
        """
        found = []
        if not self.scheduler_running:
            found.append("scheduler is not running")
        if self.last_run_result == "failed":
            found.append("last run failed")
        if self.last_run_result == "refused":
            found.append(f"last run refused: {self.last_reason or 'refused'}")
        if self.notice_unsent:
            found.append(
                f"notice_unsent: {self.notice_unsent} removal(s) wait on owner notices "
                "that could not be sent"
            )
        return found

    def report(self) -> dict[str, Any]:
        """The JSON body of `/healthz`."""
        problems = self.problems()
        return {
            "status": "unhealthy" if problems else "ok",
            "problems": problems,
            "scheduler": "running" if self.scheduler_running else "stopped",
            "last_run": {
                "result": self.last_run_result,
                "at": _iso(self.last_run_at),
                "error": redact_text(self.last_error) if self.last_error else None,
                "reason": self.last_reason,
            },
            "next_run": _iso(self.next_run_at),
        }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def metrics_app(metrics: Metrics, health: HealthState) -> Starlette:
    """The ASGI app serving `/metrics` and `/healthz`."""

    async def serve_metrics(_request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def serve_health(_request: Request) -> Response:
        report = health.report()
        return JSONResponse(report, status_code=200 if report["status"] == "ok" else 503)

    return Starlette(
        routes=[
            Route("/metrics", serve_metrics, methods=["GET"]),
            Route("/healthz", serve_health, methods=["GET"]),
        ]
    )


def parse_address(text: str, setting: str = ADDRESS_SETTING) -> tuple[str, int]:
    """`HOST:PORT` or `[IPv6]:PORT` into a host and port; SettingsError naming the setting."""
    host, sep, port_text = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise SettingsError(
            f"{setting}: {text!r} is not HOST:PORT",
            hint="write it as 127.0.0.1:9464 or [::1]:9464",
        )
    return host, int(port_text)


def _bind(address: str, setting: str = ADDRESS_SETTING) -> socket.socket:
    host, port = parse_address(address, setting)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot serve on {address} ({setting}): {exc.strerror}",
            hint=f"set {setting} to a free local address and port",
        ) from exc


@asynccontextmanager
async def serve_metrics(
    address: str, metrics: Metrics, health: HealthState
) -> AsyncIterator[tuple[str, int]]:
    """Serve `/metrics` and `/healthz` on `address` for the `with` block; yields (host, port)."""
    async with serve_app(address, metrics_app(metrics, health), ADDRESS_SETTING) as bound:
        yield bound


@asynccontextmanager
async def serve_app(address: str, app: ASGIApp, setting: str) -> AsyncIterator[tuple[str, int]]:
    """Serve an ASGI app on `address` (named by `setting` in errors) from this event loop for
    the `with` block; yields (host, port).

    The socket is bound before anything else so that a taken port is reported at start-up.
    uvicorn's startup/shutdown are called directly instead of `serve()`, which would take
    over SIGINT/SIGTERM that belong to the daemon and wake the loop ten times a second.
    """
    sock = _bind(address, setting)
    config = uvicorn.Config(
        app,
        lifespan="off",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=2,
    )
    config.load()
    server = uvicorn.Server(config)
    # The one step of serve() that startup() needs; lifespan is "off", so it does nothing else.
    server.lifespan = config.lifespan_class(config)
    try:
        await server.startup(sockets=[sock])
    except BaseException:
        sock.close()
        raise
    try:
        host, port = sock.getsockname()[:2]
        yield host, port
    finally:
        await server.shutdown(sockets=[sock])
        sock.close()
