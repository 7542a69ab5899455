"""Feeding the daemon's metrics from what runs did: client stats, scans, the audit record, tokens.

Removals are counted from the audit record's outcome rows, not from the run's own tallies: the
record is the truth, and it also holds the outcomes that start-up reconciliation wrote for
intents an earlier process left behind. For the same reason the last run a restarted daemon
reports is the record's last `run_finished`, whoever made it (the daemon, `retention run`, the
timer unit): they share the state directory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from retention.alerts import deliver as delivery
from retention.audit.log import AuditLog
from retention.audit.store import connect_reader, event_data
from retention.engine.scan import ScanReport
from retention.errors import RetentionError
from retention.goto.client import GoToClient
from retention.goto.stats import RequestStats
from retention.goto.tokenstore import TokenStore
from retention.service.metrics import RUN_RESULTS, Metrics, RunState
from retention.settings import Settings
from retention.times import parse_stored_time


def absorb_requests(metrics: Metrics, stats: RequestStats) -> None:
    """Add one client's request counts (answers, transport errors, 429s, retries)."""
    for (_method, endpoint, status), count in stats.responses.items():
        metrics.api_requests.labels(endpoint=endpoint, status=str(status)).inc(count)
        if status == 429:
            metrics.api_rate_limited.labels(endpoint=endpoint).inc(count)
    for (_method, endpoint, _kind), count in stats.transport_errors.items():
        metrics.api_requests.labels(endpoint=endpoint, status="error").inc(count)
    for endpoint, count in stats.retried.items():
        metrics.api_retries.labels(endpoint=endpoint).inc(count)


def absorb_scans(metrics: Metrics, scans: Iterable[ScanReport]) -> None:
    """Add the sessions the scans read."""
    for report in scans:
        metrics.observe_scanned(report.sessions_seen)


def absorb_record(
    metrics: Metrics,
    clients: Iterable[GoToClient],
    audits: Iterable[AuditLog],
    audit_ok: bool | None,
) -> None:
    """Whether the record verified, the clock skew last measured, witness and alert failures."""
    if audit_ok is not None:
        metrics.set_audit_ok(audit_ok)
    for client in clients:
        skew = client.clock_skew_seconds()
        if skew is not None:
            metrics.set_clock_skew(skew)
    for audit in audits:
        metrics.witness_failures.inc(audit.witness_failures)
    metrics.absorb_notify_failures(delivery.FAILURES.total)


class AuditFollower:
    """Reads the audit record from where it last stopped: new outcomes, and intents pending."""

    def __init__(self, settings: Settings) -> None:
        self._path = settings.audit_db
        self._last_seq = 0

    def _connect(self) -> sqlite3.Connection | None:
        return connect_reader(self._path) if self._path.is_file() else None

    def skip_to_end(self) -> None:
        """Count only what is recorded from now on (the counters start at zero)."""
        conn = self._connect()
        if conn is None:
            return
        try:
            self._last_seq = int(
                conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            )
        finally:
            conn.close()

    def absorb(self, metrics: Metrics) -> None:
        """Count the outcomes recorded since the last call; set the pending-intents gauge."""
        conn = self._connect()
        if conn is None:
            metrics.set_pending_intents(0)
            return
        try:
            rows = conn.execute(
                "SELECT action, outcome, coalesce(policy, ''), count(*), max(seq) FROM events"
                " WHERE event = 'outcome' AND seq > ? GROUP BY action, outcome, policy",
                [self._last_seq],
            ).fetchall()
            for action, outcome, policy, count, last in rows:
                metrics.removals.labels(action=action, outcome=outcome, policy=policy).inc(count)
                self._last_seq = max(self._last_seq, int(last))
            pending = conn.execute(
                "SELECT count(*) FROM events AS i WHERE i.event = 'intent' AND NOT EXISTS"
                " (SELECT 1 FROM events AS o WHERE o.event = 'outcome' AND o.intent_seq = i.seq)"
            ).fetchone()[0]
        finally:
            conn.close()
        metrics.set_pending_intents(int(pending))


def absorb_token_age(metrics: Metrics, settings: Settings) -> None:
    """When the refresh token in use was obtained: the stored (rotated) one's time, else unknown."""
    stored = TokenStore.in_state_dir(settings.state_dir).load()
    metrics.set_refresh_token_issued(stored.obtained_at if stored is not None else None)


@dataclass(frozen=True)
class RecordedRun:
    """The last run the audit record holds: its result as the daemon reports it, and times."""

    result: RunState
    finished_at: datetime
    duration_seconds: float
    reason: str | None = None
    error: str | None = None


def last_recorded_run(settings: Settings) -> RecordedRun | None:
    """The record's last `run_finished`, with its refusal's reason; None when it holds none.

    None too when the record cannot be read: the start-up check, which follows, says why.
    """
    try:
        return _last_run(settings)
    except (RetentionError, sqlite3.Error):
        return None


def _last_run(settings: Settings) -> RecordedRun | None:
    if not settings.audit_db.is_file():
        return None
    conn = connect_reader(settings.audit_db)
    try:
        last = conn.execute(
            "SELECT seq, run, time, data FROM events WHERE event = 'run_finished'"
            " ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return None
        seq, run, finished_text, data_text = last
        # The run's own rows come just before its end: a backward walk from it finds them.
        earlier = conn.execute(
            "SELECT event, time, data FROM events WHERE seq < ? AND run = ?"
            " AND event IN ('run_started', 'refused') ORDER BY seq DESC",
            [seq, run],
        ).fetchall()
    finally:
        conn.close()
    finished = parse_stored_time(finished_text)
    started = next((parse_stored_time(t) for e, t, _ in earlier if e == "run_started"), finished)
    refusal = next((event_data(d) for e, _, d in earlier if e == "refused"), {})
    result = RUN_RESULTS.get(str(event_data(data_text).get("result")), "failed")
    details = refusal.get("details")
    message = details.get("message") if isinstance(details, dict) else None
    return RecordedRun(
        result=result,
        finished_at=finished,
        duration_seconds=max((finished - started).total_seconds(), 0.0),
        reason=str(refusal["reason"]) if result == "refused" and "reason" in refusal else None,
        error=str(message) if result == "refused" and message else None,
    )
