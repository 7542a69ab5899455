"""What reappears is decided again: a removal a later scan still sees is recorded, then forgotten.

A DELETE answered 2xx marks the session, its attendee list or its recording removed in the
inventory (`inventory.mark_removed`), and a scan that reads the row again keeps the mark (an
incremental scan reads settled history again only when it has a reason; `retention inventory
--full` reads it all). After each run's scan, each thing read again since it was marked is a
reappearance when the scan that read it started `RETENTION_REAPPEAR_GRACE` or more after the
outcome that removed it (earlier, the API may simply not have caught up): a `reappeared` event
names the action, the session, the outcome that said `deleted` and what the scan saw; the mark
is cleared, so the thing is a fact again, planned again when due. A grace of `0` records none
and keeps every mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlite_utils import Database

from retention.audit import AuditLog
from retention.engine.inventory import from_text, key_text
from retention.policy.models import DeleteAction
from retention.times import parse_stored_time

log = structlog.get_logger(__name__)

# Each removal's mark, and what a read row must show for the thing to be there again.
_MARKS: dict[DeleteAction, tuple[str, str]] = {
    "delete_session": ("removed_at", "1"),
    "delete_attendees": ("attendees_removed_at", "attendee_count > 0"),
    "delete_recordings": ("recording_removed_at", "recording_id IS NOT NULL"),
}


@dataclass(frozen=True)
class Reappearance:
    """A removed thing a scan read again: which, when it was marked and read, what was seen."""

    action: DeleteAction
    session_id: int
    organizer_key: int
    meeting_id: int
    marked_at: datetime
    read_at: datetime
    seen: dict[str, Any]


def seen_again(db: Database) -> list[Reappearance]:
    """Everything marked removed that a scan read after the mark, in session-id order."""
    found = []
    for action, (column, present) in _MARKS.items():
        rows = db.execute(
            "SELECT session_id, organizer_key, meeting_id, start_time, end_time,"  # noqa: S608
            f" attendee_count, recording_id, recording_bytes, {column}, last_seen FROM sessions"
            f" WHERE {column} IS NOT NULL AND last_seen > {column} AND {present}"
            " ORDER BY length(session_id), session_id"
        ).fetchall()
        for session, organizer, meeting, start, end, attendees, recording, size, at, read in rows:
            marked, read_at = from_text(at), from_text(read)
            if marked is None or read_at is None:
                continue
            seen = {
                "start_time": start,
                "end_time": end,
                "attendee_count": attendees,
                "recording_id": recording,
                "recording_bytes": size,
            }
            found.append(
                Reappearance(
                    action, int(session), int(organizer), int(meeting), marked, read_at, seen
                )
            )
    return found


def record_reappeared(
    db: Database,
    audit: AuditLog,
    *,
    run_id: str,
    grace_seconds: float | None,
) -> list[Reappearance]:
    """Record each reappearance past the grace and clear its mark; returns those recorded."""
    if grace_seconds is None:
        return []
    grace = timedelta(seconds=grace_seconds)
    recorded = []
    for found in seen_again(db):
        removal = audit.last_removal(found.session_id, found.action)
        removed_at = found.marked_at if removal is None else parse_stored_time(removal[1])
        # `last_seen` is the start of the scan that read the row.
        if found.read_at - removed_at < grace:
            continue
        audit.reappeared(
            run_id=run_id,
            action=found.action,
            organizer_key=found.organizer_key,
            meeting_id=found.meeting_id,
            session_id=found.session_id,
            deleted_seq=removal[0] if removal is not None and removal[2] == "deleted" else None,
            seen=found.seen,
        )
        _forget_mark(db, found)
        recorded.append(found)
        log.warning(
            "a removal was seen again: it is decided again",
            action=found.action,
            session_id=str(found.session_id),
            removed_at=removed_at.isoformat(),
        )
    return recorded


def _forget_mark(db: Database, found: Reappearance) -> None:
    column = _MARKS[found.action][0]
    with db.atomic():
        db.execute(
            f"UPDATE sessions SET {column} = NULL WHERE session_id = ?",  # noqa: S608 (a fixed name)
            [key_text(found.session_id)],
        )
