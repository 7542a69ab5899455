"""The state database's timeliness cache: first loads of policy contents, overdue per run.

`overdue_points` keeps one point per run and policy for 30 days, then one per policy and day
(the day's last); `/metrics`, `retention status` and the overdue alert read the latest point
of each policy. The record's `run_finished` rows stay the proof; this is a cache of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from retention.times import parse_stored_time

KEEP_EVERY_RUN = timedelta(days=30)


def first_loads(db: Database) -> dict[str, datetime]:
    """When each policy content (by hash) was first loaded, as far as the state knows."""
    if not db["policy_loads"].exists():
        return {}
    return {
        str(row["content_hash"]): parse_stored_time(str(row["first_loaded"]))
        for row in db.query("SELECT content_hash, first_loaded FROM policy_loads")
    }


def remember_first_loads(db: Database, loads: Iterable[tuple[str, str, str]]) -> None:
    """Keep (content hash, policy, time) of first loads not kept yet."""
    with db.atomic():
        for content, policy, at in loads:
            db.execute(
                "INSERT OR IGNORE INTO policy_loads (content_hash, policy, first_loaded)"
                " VALUES (?, ?, ?)",
                [content, policy, at],
            )


def record_overdue(db: Database, run_id: str, at: datetime, summary: Mapping[str, Any]) -> None:
    """Keep one run's overdue point per policy; points past 30 days thin to one per day."""
    when = at.isoformat()
    with db.atomic():
        for policy, entry in summary.items():
            db.execute(
                "INSERT OR REPLACE INTO overdue_points"
                " (run_id, at, policy, overdue, oldest_due_at, reasons) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    when,
                    policy,
                    int(entry["overdue"]),
                    entry["oldest_due_at"],
                    json.dumps(entry["reasons"], sort_keys=True),
                ],
            )
        # Older than 30 days: only each policy's last point of each day stays (a range of
        # the (policy, at) index per day, so the cost does not grow with the series).
        db.execute(
            "DELETE FROM overdue_points AS p WHERE p.at < ? AND p.at < ("
            " SELECT max(q.at) FROM overdue_points AS q WHERE q.policy = p.policy"
            "  AND q.at >= substr(p.at, 1, 10) AND q.at < date(substr(p.at, 1, 10), '+1 day'))",
            [(at - KEEP_EVERY_RUN).isoformat()],
        )


def forget_other_policies(db: Database, kept: Iterable[str]) -> None:
    """Drop the points of policies no longer in force (the record keeps their history)."""
    names = sorted(set(kept))
    marks = ", ".join("?" for _ in names) or "''"
    with db.atomic():
        db.execute(f"DELETE FROM overdue_points WHERE policy NOT IN ({marks})", names)  # noqa: S608


@dataclass(frozen=True, slots=True)
class Overdue:
    """A policy's latest overdue point: how many, the oldest due time, why, and when."""

    policy: str
    at: datetime
    overdue: int
    oldest_due_at: datetime | None
    reasons: dict[str, int]

    def age_seconds(self, now: datetime) -> float:
        """How long the oldest overdue removal has been due (0 when none is)."""
        if self.oldest_due_at is None or not self.overdue:
            return 0.0
        return max((now - self.oldest_due_at).total_seconds(), 0.0)


def latest_overdue(db: Database) -> list[Overdue]:
    """Each policy's latest point, by policy name (empty before any run recorded one)."""
    if not db["overdue_points"].exists():
        return []
    rows = db.query(
        "SELECT policy, at, overdue, oldest_due_at, reasons FROM overdue_points AS p"
        " WHERE at = (SELECT max(at) FROM overdue_points AS q WHERE q.policy = p.policy)"
        " ORDER BY policy"
    )
    return [
        Overdue(
            policy=str(row["policy"]),
            at=parse_stored_time(str(row["at"])),
            overdue=int(row["overdue"]),
            oldest_due_at=(
                parse_stored_time(str(row["oldest_due_at"])) if row["oldest_due_at"] else None
            ),
            reasons={str(k): int(v) for k, v in json.loads(str(row["reasons"])).items()},
        )
        for row in rows
    ]


def points_count(db: Database, policy: str) -> int:
    """How many points a policy has (the cache's thinning is tested by it)."""
    row = db.execute("SELECT count(*) FROM overdue_points WHERE policy = ?", [policy]).fetchone()
    return int(row[0])
