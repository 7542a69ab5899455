"""The inventory in the state database: what scans write, what decide reads, what deletes mark.

Times are stored as ISO 8601 UTC text (`2021-07-01T23:00:00+00:00`), which sorts as time does.
NULL means unknown; a session with unknown fields keeps the list of its problems, so that the
decision engine (for which unknown never matches) and the reports both see it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from retention.engine.records import SessionRecord
from retention.goto.models import Group, HistoricalSession, ItemProblem, Organizer
from retention.policy.models import DeleteAction
from retention.times import parse_stored_time

# Who organizes a session, in which group, comes from the organizer listing the last scan or
# re-read stored (current), never from the copy made when the session's window was first read:
# an organizer moved into a held group, or renamed, is decided as the account shows them now.
# Only an organizer the listing no longer has keeps the stored copy.
_SESSION_FIELDS = (
    "s.session_id, s.meeting_id, s.organizer_key, "
    "CASE WHEN o.organizer_key IS NULL THEN s.organizer_email ELSE o.email END "
    "AS organizer_email, "
    "CASE WHEN o.organizer_key IS NULL THEN s.group_key ELSE o.group_key END AS group_key, "
    "CASE WHEN o.organizer_key IS NULL THEN s.group_name ELSE o.group_name END AS group_name, "
    "s.subject, s.meeting_type, s.start_time, s.end_time, s.attendee_count, s.recording_id, "
    "s.recording_name, s.recording_bytes, s.recording_unknown, s.conflicts, "
    "s.attendees_removed_at, s.recording_removed_at"
)
_SESSIONS_NOW = "sessions s LEFT JOIN organizers o ON o.organizer_key = s.organizer_key"


def to_text(moment: datetime | None) -> str | None:
    """A datetime as stored: ISO 8601 in UTC, to the second."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def from_text(text: str | None) -> datetime | None:
    """A stored time back as an aware UTC datetime."""
    return None if text is None else parse_stored_time(text)


def store_directory(
    db: Database, organizers: Iterable[Organizer], groups: Iterable[Group], now: datetime
) -> None:
    """Replace the organizers and groups tables with the account's current listing."""
    seen = to_text(now)
    with db.atomic():
        db.execute("DELETE FROM organizers")
        db.execute("DELETE FROM groups")
        db.table("organizers").insert_all(
            {
                "organizer_key": key_text(organizer.organizer_key),
                "email": organizer.email,
                "group_key": _optional_key(organizer.group_key),
                "group_name": organizer.group_name,
                "status": organizer.status,
                "seen_at": seen,
            }
            for organizer in organizers
        )
        db.table("groups").insert_all(
            {
                "group_key": key_text(group.group_key),
                "name": group.group_name,
                "parent_key": _optional_key(group.parent_key),
                "status": group.status,
                "num_organizers": group.num_organizers,
                "seen_at": seen,
            }
            for group in groups
        )
        _remember_names(db, seen)


# Every organizer key with its email, and group key with its name, ever listed: a hold naming
# someone who has left the account names someone known (DECISIONS: only names never seen are
# unknown).
_REMEMBER = (
    "INSERT INTO names_seen (kind, key, name, first_seen, last_seen) "
    "SELECT ?, CAST({key} AS TEXT), COALESCE({name}, ''), ?, ? FROM {table} WHERE true "
    "ON CONFLICT (kind, key, name) DO UPDATE SET last_seen = excluded.last_seen"
)


def _remember_names(db: Database, seen: str | None) -> None:
    for kind, key, name, table in (
        ("organizer", "organizer_key", "email", "organizers"),
        ("group", "group_key", "name", "groups"),
    ):
        db.execute(_REMEMBER.format(key=key, name=name, table=table), [kind, seen, seen])


@dataclass(frozen=True)
class WindowResult:
    """One organizer's sessions over one fully read window [start, end).

    `contradicted` holds the ids of sessions whose times this read contradicted (see sanity.py):
    the session stays unknown for the rest of the scan, whatever another read of it says.
    """

    organizer: Organizer
    start: datetime
    end: datetime
    sessions: list[HistoricalSession]
    problems: list[ItemProblem] = field(default_factory=list)
    contradicted: frozenset[int] = frozenset()

    @property
    def place(self) -> str:
        """Where the sessions were read, as problems name it."""
        return (
            f"/organizers/{self.organizer.organizer_key}/historicalMeetings"
            f" {to_text(self.start)} .. {to_text(self.end)}"
        )


def key_text(key: int) -> str:
    """A key as the state database stores it: its digits (keys may exceed SQLite's integers)."""
    return str(key)


def _optional_key(key: int | None) -> str | None:
    return None if key is None else key_text(key)


def store_window(db: Database, result: WindowResult, scan_id: int, now: datetime) -> int:
    """Store the window's sessions and drop the organizer's stored ones it no longer lists.

    A fully read window is authoritative for sessions that started inside it; sessions with an
    unknown start are never dropped here (only a full scan can tell they are gone). Each read
    is compared with the stored row (see `_identity_conflict`). Returns the number dropped.
    """
    by_session: dict[int, list[str]] = {}
    for problem in result.problems:
        session_key = problem.keys.get("sessionId")
        if not problem.dropped and session_key is not None:
            by_session.setdefault(int(str(session_key)), []).append(problem.describe())
    returned = {key_text(session.session_id) for session in result.sessions}
    read = _Read(result, result.place, scan_id, to_text(now))
    with db.atomic():
        for session in result.sessions:
            _store_read(db, read, session, by_session.get(session.session_id, []))
        stale = [
            session_id
            for (session_id,) in db.execute(
                "SELECT session_id FROM sessions WHERE organizer_key = ? "
                "AND start_time >= ? AND start_time < ?",
                [
                    key_text(result.organizer.organizer_key),
                    to_text(result.start),
                    to_text(result.end),
                ],
            )
            if session_id not in returned
        ]
        for session_id in stale:
            db.execute("DELETE FROM sessions WHERE session_id = ?", [session_id])
    return len(stale)


_STORED_NAMES = (
    "organizer_key",
    "meeting_id",
    "identity_start",
    "identity_end",
    "read_from",
    "conflicts",
    "conflict_scan",
    "conflict_sticky",
)
_STORED_FACTS = f"SELECT {', '.join(_STORED_NAMES)} FROM sessions WHERE session_id = ?"  # noqa: S608  (constant names)


@dataclass(frozen=True)
class _Read:
    """One window's read: where, by which scan, when (each computed once per window)."""

    result: WindowResult
    place: str
    scan_id: int
    seen: str | None


def _store_read(db: Database, read: _Read, session: HistoricalSession, problems: list[str]) -> None:
    """One read of a session: its mutable facts replace the stored ones; identity must agree.

    A conflict with the stored row (read earlier in this scan or in an earlier one) sticks
    until a complete full scan reads the session with no conflict (`settle_conflicts`); a read
    whose own times contradicted themselves keeps the session unknown for the rest of its scan.
    """
    result, scan_id = read.result, read.scan_id
    found_row = db.execute(_STORED_FACTS, [key_text(session.session_id)]).fetchone()
    stored = None if found_row is None else dict(zip(_STORED_NAMES, found_row, strict=True))
    fresh: list[str] = []
    carried: list[str] = []
    sticky = False
    conflict_scan = None
    start, end = to_text(session.start_time), to_text(session.end_time)
    identity_start, identity_end = start, end
    if stored is not None:
        identity_start = identity_start or stored["identity_start"]
        identity_end = identity_end or stored["identity_end"]
        found = _identity_conflict(stored, session, (start, end), read.place)
        if found is not None:
            fresh.append(found)
            sticky = True
        if stored["conflict_sticky"] or stored["conflict_scan"] == scan_id:
            carried = json.loads(stored["conflicts"] or "[]")
            sticky = sticky or bool(stored["conflict_sticky"])
            conflict_scan = stored["conflict_scan"]
    if session.session_id in result.contradicted:
        fresh.extend(problems)
    if fresh:
        conflict_scan = scan_id
    conflicts = list(dict.fromkeys([*carried, *fresh]))
    _upsert_session(
        db,
        read,
        session,
        problems=list(dict.fromkeys([*problems, *conflicts])),
        facts={
            "identity_start": identity_start,
            "identity_end": identity_end,
            "read_from": read.place,
            "conflicts": json.dumps(conflicts) if conflicts else None,
            "conflict_scan": conflict_scan if conflicts else None,
            "conflict_sticky": int(sticky),
            "start_time": start,
            "end_time": end,
        },
    )


def _identity_conflict(
    stored: dict[str, Any],
    session: HistoricalSession,
    times: tuple[str | None, str | None],
    place: str,
) -> str | None:
    """How this read's identity (organizer, meeting, start, and an end once given) differs from
    the stored row's, naming both places; None when they agree."""
    facts = {
        "organizer": (str(stored["organizer_key"]), str(session.organizer_key)),
        "meeting": (str(stored["meeting_id"]), str(session.meeting_id)),
        "start": (stored["identity_start"], times[0]),
        "end": (stored["identity_end"], times[1]),
    }
    differ = {
        name: pair
        for name, pair in facts.items()
        if pair[0] is not None and pair[1] is not None and pair[0] != pair[1]
    }
    if not differ:
        return None
    before = ", ".join(f"{name} {pair[0]}" for name, pair in differ.items())
    read = ", ".join(f"{name} {pair[1]}" for name, pair in differ.items())
    return (
        f"sessionId {session.session_id} is one session with two identities:"
        f" {before} at {stored['read_from'] or 'an earlier scan'}; {read} at {place}"
        " (unknown until the API agrees with itself)"
    )


def settle_conflicts(db: Database, scan_id: int) -> int:
    """After a complete full scan: forget the conflicts of sessions it read without one (the
    API now agrees with itself); their other problems stay. Returns how many were settled."""
    rows = db.execute(
        "SELECT session_id, problems, conflicts FROM sessions WHERE conflicts IS NOT NULL"
        " AND last_scan = ? AND (conflict_scan IS NULL OR conflict_scan != ?)",
        [scan_id, scan_id],
    ).fetchall()
    with db.atomic():
        for session_id, problems, conflicts in rows:
            gone = set(json.loads(conflicts))
            left = [p for p in json.loads(problems or "[]") if p not in gone]
            db.execute(
                "UPDATE sessions SET conflicts = NULL, conflict_sticky = 0, problems = ?"
                " WHERE session_id = ?",
                [json.dumps(left) if left else None, session_id],
            )
    return len(rows)


_UPSERTED = (
    "session_id",
    "meeting_id",
    "organizer_key",
    "organizer_email",
    "group_key",
    "group_name",
    "subject",
    "meeting_type",
    "start_time",
    "end_time",
    "duration_minutes",
    "attendee_count",
    "recording_id",
    "recording_name",
    "recording_bytes",
    "recording_unknown",
    "has_transcript",
    "problems",
    "identity_start",
    "identity_end",
    "read_from",
    "conflicts",
    "conflict_scan",
    "conflict_sticky",
    "last_seen",
    "last_scan",
    "first_seen",
)  # fmt: skip  (the first and last are kept by an update: see below)
# One statement per session (sqlite-utils' upsert reads the table's schema on every call).
# A stored row keeps its first sighting and the removals already done (a removed session read
# again is a reappearance, decided after the scan: engine/reappear.py), except that a recording
# removal is forgotten when the API now shows a different recording.
_UPSERT_SESSION = (
    f"INSERT INTO sessions ({', '.join(_UPSERTED)}) "  # noqa: S608  (constant names)
    f"VALUES ({', '.join(':' + name for name in _UPSERTED)}) "
    "ON CONFLICT(session_id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _UPSERTED[1:-1])
    + ", recording_removed_at = CASE WHEN sessions.recording_id IS excluded.recording_id "
    "THEN sessions.recording_removed_at END"
)


def _upsert_session(
    db: Database,
    read: _Read,
    session: HistoricalSession,
    *,
    problems: list[str],
    facts: dict[str, Any],
) -> None:
    """One statement: the read's facts over the stored row (`facts`: identity, times, conflicts)."""
    organizer = read.result.organizer
    recording = session.recording
    known = recording is not None and recording.known
    seen = read.seen
    row: dict[str, Any] = {
        "session_id": key_text(session.session_id),
        "meeting_id": key_text(session.meeting_id),
        "organizer_key": key_text(session.organizer_key),
        "organizer_email": session.email or organizer.email,
        "group_key": _optional_key(organizer.group_key),
        "group_name": organizer.group_name,
        "subject": session.subject,
        "meeting_type": session.meeting_type,
        "duration_minutes": session.duration,
        "attendee_count": session.num_attendees,
        "recording_id": recording.recording_id if recording and known else None,
        "recording_name": recording.recording_name if recording and known else None,
        "recording_bytes": recording.file_size if recording and known else None,
        "recording_unknown": int(not session.recording_known),
        "has_transcript": int(recording.has_transcript) if recording else 0,
        "problems": json.dumps(problems) if problems else None,
        **facts,
        "last_seen": seen,
        "last_scan": read.scan_id,
        "first_seen": seen,
    }
    db.execute(_UPSERT_SESSION, row)


def drop_unseen(db: Database, organizer_keys: Iterable[int], scan_id: int) -> int:
    """After a complete full scan of these organizers: drop their sessions it did not see."""
    dropped = 0
    with db.atomic():
        for key in organizer_keys:
            cursor = db.execute(
                "DELETE FROM sessions WHERE organizer_key = ? "
                "AND (last_scan IS NULL OR last_scan != ?)",
                [key_text(key), scan_id],
            )
            dropped += cursor.rowcount
    return dropped


def drop_organizers_gone(db: Database) -> int:
    """Drop sessions of organizers the account no longer lists (after a full scan)."""
    cursor = db.execute(
        "DELETE FROM sessions WHERE organizer_key NOT IN (SELECT organizer_key FROM organizers)"
    )
    return cursor.rowcount


def iter_sessions(db: Database) -> Iterator[SessionRecord]:
    """Every session still present, streamed in session-id order (flat memory at any size)."""
    rows = db.query(
        f"SELECT {_SESSION_FIELDS} FROM {_SESSIONS_NOW} "  # noqa: S608  (constant)
        "WHERE s.removed_at IS NULL ORDER BY length(s.session_id), s.session_id"  # shorter: smaller
    )
    for row in rows:
        yield _record(row)


def session_record(db: Database, session_id: int) -> SessionRecord | None:
    """One session as the inventory knows it, removed or not; None when it never was seen."""
    rows = db.query(
        f"SELECT {_SESSION_FIELDS} FROM {_SESSIONS_NOW} WHERE s.session_id = ?",  # noqa: S608
        [key_text(session_id)],
    )
    row = next(rows, None)
    return None if row is None else _record(row)


def _record(row: dict[str, Any]) -> SessionRecord:
    """A stored row as the record decide reads: what was removed reads as absent."""
    recording_gone = row["recording_removed_at"] is not None
    # A session read with two identities has no time anyone can trust: unknown.
    trusted = row["conflicts"] is None
    return SessionRecord(
        session_id=int(row["session_id"]),
        meeting_id=int(row["meeting_id"]),
        organizer_key=int(row["organizer_key"]),
        organizer_email=row["organizer_email"],
        group_key=None if row["group_key"] is None else int(row["group_key"]),
        group_name=row["group_name"],
        subject=row["subject"],
        meeting_type=row["meeting_type"],
        start_time=from_text(row["start_time"]) if trusted else None,
        end_time=from_text(row["end_time"]) if trusted else None,
        attendee_count=0 if row["attendees_removed_at"] is not None else row["attendee_count"],
        recording_id=None if recording_gone else row["recording_id"],
        recording_name=None if recording_gone else row["recording_name"],
        recording_bytes=None if recording_gone else row["recording_bytes"],
        recording_known=recording_gone or not row["recording_unknown"],
    )


def session_problems(db: Database) -> Iterator[tuple[int, list[str]]]:
    """Sessions stored with unknown fields, and what was wrong with each."""
    cursor = db.execute(
        "SELECT session_id, problems FROM sessions WHERE problems IS NOT NULL"
        " ORDER BY length(session_id), session_id"
    )
    for session_id, problems in cursor:
        yield int(session_id), json.loads(problems)


def mark_removed(db: Database, session_id: int, action: DeleteAction, now: datetime) -> None:
    """Record in the inventory that a DELETE for `action` on this session succeeded."""
    column = {
        "delete_session": "removed_at",
        "delete_attendees": "attendees_removed_at",
        "delete_recordings": "recording_removed_at",
    }[action]
    with db.atomic():
        db.execute(
            f"UPDATE sessions SET {column} = ? WHERE session_id = ?",  # noqa: S608  (a fixed name)
            [to_text(now), key_text(session_id)],
        )


def read_again_from(db: Database, organizer_key: int, start: datetime) -> None:
    """Move the organizer's watermark back to `start`: its next scan reads from there again."""
    with db.atomic():
        db.execute(
            "UPDATE watermarks SET scanned_through = ? "
            "WHERE organizer_key = ? AND scanned_through > ?",
            [to_text(start), key_text(organizer_key), to_text(start)],
        )


@dataclass(frozen=True)
class Counts:
    """How much the inventory holds, over the account or one group."""

    organizers: int = 0
    sessions: int = 0
    recordings: int = 0
    recording_bytes: int = 0
    attendee_lists: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counts under their stable JSON names."""
        return asdict(self)


@dataclass(frozen=True)
class GroupCounts:
    """Counts of one group (group_key None: organizers in no group)."""

    group_key: int | None
    name: str | None
    counts: Counts


@dataclass(frozen=True)
class InventorySummary:
    """The whole account's counts and each group's."""

    total: Counts
    groups: list[GroupCounts]

    def as_json(self) -> dict[str, Any]:
        """`{"organizers", "sessions", "recordings", "recording_bytes", "attendee_lists",
        "groups": [{"group_key", "name", ...counts}]}`."""
        groups = [
            {"group_key": group.group_key, "name": group.name, **group.counts.as_dict()}
            for group in self.groups
        ]
        return {**self.total.as_dict(), "groups": groups}


_COUNT_SQL = """
SELECT group_key,
       COUNT(*) AS sessions,
       SUM(recording_id IS NOT NULL AND recording_removed_at IS NULL) AS recordings,
       COALESCE(SUM(CASE WHEN recording_removed_at IS NULL THEN recording_bytes END), 0)
           AS recording_bytes,
       SUM(attendee_count > 0 AND attendees_removed_at IS NULL) AS attendee_lists
FROM sessions WHERE removed_at IS NULL GROUP BY group_key
"""


def count_summary(db: Database) -> InventorySummary:
    """Organizers, sessions, recordings (count, bytes) and attendee lists: total and per group."""
    organizers_by_group: dict[int | None, int] = {
        _read_key(key): count
        for key, count in db.execute(
            "SELECT group_key, COUNT(*) FROM organizers GROUP BY group_key"
        ).fetchall()
    }
    names: dict[int | None, str | None] = {
        _read_key(key): name
        for key, name in db.execute("SELECT group_key, name FROM groups").fetchall()
    }
    sessions_by_group = {_read_key(row["group_key"]): row for row in db.query(_COUNT_SQL)}
    groups = []
    for key in sorted(set(names) | set(organizers_by_group) | set(sessions_by_group), key=_order):
        row = sessions_by_group.get(key, {})
        counts = Counts(
            organizers_by_group.get(key, 0),
            row.get("sessions") or 0,
            row.get("recordings") or 0,
            row.get("recording_bytes") or 0,
            row.get("attendee_lists") or 0,
        )
        groups.append(GroupCounts(key, names.get(key), counts))
    total = Counts(
        sum(group.counts.organizers for group in groups),
        sum(group.counts.sessions for group in groups),
        sum(group.counts.recordings for group in groups),
        sum(group.counts.recording_bytes for group in groups),
        sum(group.counts.attendee_lists for group in groups),
    )
    return InventorySummary(total, groups)


def _read_key(stored: object) -> int | None:
    return None if stored is None else int(str(stored))


def _order(key: int | None) -> tuple[bool, int]:
    return (key is None, key or 0)
