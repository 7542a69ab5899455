"""The daemon's timeliness metrics: overdue removals per policy and reason, the oldest one's age,
and how late removals were made (from the record's outcomes and their intents' `due_at`).

The overdue gauges follow each policy's latest point in the state database (the last run that
decided the whole inventory); the histogram counts what the record holds from start-up on.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram

from retention.audit.store import connect_reader
from retention.audit.timeliness import lateness_since
from retention.engine.overdue import latest_overdue
from retention.engine.timeliness import REASONS
from retention.service.statedir import reader
from retention.settings import Settings

HOUR, DAY = 3600.0, 86400.0
# From a run interval to a year: what matters is whether a policy keeps its promise in days.
LATENESS_BUCKETS = (60.0, 600.0, HOUR, 6 * HOUR, DAY, 3 * DAY, 7 * DAY, 30 * DAY, 365 * DAY)


class TimelinessMetrics:
    """`retention_overdue_removals{policy,reason}`, `retention_oldest_overdue_seconds{policy}`,
    `retention_removal_lateness_seconds{policy}` on the daemon's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.overdue = Gauge(
            "retention_overdue_removals",
            "Removals due and not made at the last run that decided each policy, by reason",
            ["policy", "reason"],
            registry=registry,
        )
        self.oldest = Gauge(
            "retention_oldest_overdue_seconds",
            "How long each policy's oldest overdue removal has been due (0: none overdue)",
            ["policy"],
            registry=registry,
        )
        self.lateness = Histogram(
            "retention_removal_lateness_seconds",
            "How late removals were made: the outcome's time minus the removal's due time",
            ["policy"],
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self._last_seq = 0

    def skip_to_end(self, settings: Settings) -> None:
        """Observe only removals recorded from now on (the histogram starts empty)."""
        if not settings.audit_db.is_file():
            return
        conn = connect_reader(settings.audit_db)
        try:
            self._last_seq = int(
                conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
            )
        finally:
            conn.close()

    def absorb(self, settings: Settings, now: datetime) -> None:
        """The removals made since the last call, and each policy's latest overdue point."""
        if settings.audit_db.is_file():
            conn = connect_reader(settings.audit_db)
            try:
                for made in lateness_since(conn, self._last_seq):
                    self.lateness.labels(policy=made.policy).observe(max(made.seconds, 0.0))
                    self._last_seq = max(self._last_seq, made.seq)
            finally:
                conn.close()
        if not settings.state_db.is_file():
            return
        db = reader(settings.state_db)
        try:
            latest = latest_overdue(db)
        except sqlite3.Error:
            return  # a state database not migrated yet: the next run's end migrates it
        finally:
            db.close()
        self.overdue.clear()
        self.oldest.clear()
        for point in latest:
            for reason in REASONS:
                self.overdue.labels(policy=point.policy, reason=reason).set(
                    point.reasons.get(reason, 0)
                )
            self.oldest.labels(policy=point.policy).set(point.age_seconds(now))
