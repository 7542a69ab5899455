"""`retention status`: one reading of the state directory for the operator, without the lock.

The last run (the record's last `run_finished`), what is overdue per policy (the state
database's latest points), the proposals awaiting approval and the record's state. Read-only:
WAL readers of both databases, so it works while a run holds the lock.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from retention.approvals.proposals import pending
from retention.approvals.store import approvals_needed
from retention.audit.store import connect_reader, read_meta
from retention.engine.overdue import Overdue, latest_overdue
from retention.engine.planitem import iso
from retention.errors import RetentionError
from retention.service.runmetrics import last_recorded_run
from retention.service.statedir import reader
from retention.service.timeliness import past_limit
from retention.settings import Settings

# Exit codes: readable and on time; a policy past RETENTION_MAX_OVERDUE or a last run that
# failed or was refused.
OK, ATTENTION = 0, 1


def read_status(settings: Settings, now: datetime) -> dict[str, Any]:
    """The status document (`--format json` prints it as it is)."""
    latest = _overdue(settings)
    late = {point.policy for point in past_limit(settings, latest, now)}
    last = last_recorded_run(settings)
    return {
        "as_of": iso(now),
        "last_run": None
        if last is None
        else {
            "result": last.result,
            "finished_at": iso(last.finished_at),
            "duration_seconds": round(last.duration_seconds, 1),
            "reason": last.reason,
        },
        "policies": [_policy(point, now, point.policy in late) for point in latest],
        "max_overdue": settings.max_overdue,
        "proposals": _proposals(settings, now),
        "record": _record(settings),
    }


def exit_code(status: dict[str, Any]) -> int:
    """1 when a policy is overdue past the limit or the last run failed or was refused."""
    last = status["last_run"]
    if last is not None and last["result"] in ("failed", "refused"):
        return ATTENTION
    return ATTENTION if any(p["past_limit"] for p in status["policies"]) else OK


def _policy(point: Overdue, now: datetime, late: bool) -> dict[str, Any]:
    return {
        "policy": point.policy,
        "overdue": point.overdue,
        "oldest_due_at": iso(point.oldest_due_at) if point.overdue else None,
        "oldest_age_seconds": round(point.age_seconds(now)),
        "reasons": dict(sorted(point.reasons.items())),
        "at": iso(point.at),
        "past_limit": late,
    }


def _overdue(settings: Settings) -> list[Overdue]:
    if not settings.state_db.is_file():
        return []
    db = reader(settings.state_db)
    try:
        return latest_overdue(db)
    except sqlite3.OperationalError:
        return []  # written by an older version: no point kept yet
    finally:
        db.close()


def _proposals(settings: Settings, now: datetime) -> list[dict[str, Any]]:
    needed = max(1, approvals_needed(settings))
    return [
        {
            "file": proposal.path.name,
            "items": len(proposal.plan.items),
            "approvals": len(proposal.tally(settings).valid),
            "needed": needed,
            "age_hours": round(proposal.age_hours(now), 1),
        }
        for proposal in pending(settings)
    ]


def _record(settings: Settings) -> dict[str, Any]:
    """The record's log id, rows and last checkpoint (not verified here: `audit verify`)."""
    path = settings.audit_db
    if not path.is_file():
        return {"path": str(path), "exists": False}
    try:
        conn = connect_reader(path)
    except RetentionError as exc:
        return {"path": str(path), "exists": True, "error": exc.message}
    try:
        rows, last_time = conn.execute("SELECT count(*), max(time) FROM events").fetchone()
        sealed = conn.execute(
            "SELECT time FROM events WHERE event = 'checkpoint' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        log_id = read_meta(conn).get("log_id")
    finally:
        conn.close()
    return {
        "path": str(path),
        "exists": True,
        "log_id": log_id,
        "rows": int(rows),
        "last_row_at": last_time,
        "last_checkpoint_at": sealed[0] if sealed else None,
    }
