"""The scan's bookkeeping in the state database: date windows, watermarks, scans and problems."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from sqlite_utils import Database

from retention.engine.inventory import from_text, key_text, to_text
from retention.goto.models import ItemProblem, Organizer

# How far back before a watermark a meeting may have started and still have been running then.
RUNNING_LOOKBACK = timedelta(hours=24)


def windows(start: datetime, end: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive windows of `days` covering [start, end); the last one is cut at `end`."""
    step = timedelta(days=days)
    cursor = start
    while cursor < end:
        yield cursor, min(cursor + step, end)
        cursor += step


def watermarks(db: Database) -> dict[int, datetime]:
    """How far each organizer's history has been read."""
    return {
        int(key): mark
        for key, text in db.execute("SELECT organizer_key, scanned_through FROM watermarks")
        if (mark := from_text(text)) is not None
    }


def reading_starts(
    marks: Mapping[int, datetime],
    organizers: list[Organizer],
    *,
    start: datetime,
    settle: timedelta,
    now: datetime,
) -> dict[int, datetime]:
    """Where each organizer's reading starts: the scan start, or its watermark less the
    lookback (the longer of the settle margin and `RUNNING_LOOKBACK`)."""
    lookback = max(settle, RUNNING_LOOKBACK)
    needed: dict[int, datetime] = {}
    for organizer in organizers:
        mark = marks.get(organizer.organizer_key)
        begin = start if mark is None else max(start, mark - lookback)
        if begin < now:
            needed[organizer.organizer_key] = begin
    return needed


def advance_watermarks(
    db: Database,
    needed: Mapping[int, datetime],
    failed_from: Mapping[int, datetime],
    now: datetime,
) -> None:
    """Move each organizer's watermark over what was read: up to now, or to its first window
    that failed; an organizer whose first window failed keeps its watermark."""
    with db.atomic():
        for key, begin in needed.items():
            failed = failed_from.get(key)
            through = now if failed is None else failed
            if failed is not None and through <= begin:
                continue
            db.table("watermarks").upsert(
                {
                    "organizer_key": key_text(key),
                    "scanned_through": to_text(through),
                    "updated_at": to_text(now),
                },
                pk="organizer_key",
            )


def held_sessions(
    db: Database, organizer_keys: list[int], since: datetime
) -> dict[tuple[int, int | None, str | None], bool]:
    """(organizer, meeting id, start) of the sessions stored from `since` on: has a recording."""
    marks = ",".join("?" * len(organizer_keys))
    query = f"SELECT organizer_key, meeting_id, start_time, recording_id IS NOT NULL FROM sessions WHERE organizer_key IN ({marks}) AND start_time >= ?"  # noqa: E501, S608  (placeholders only)
    rows = db.execute(query, [*map(key_text, organizer_keys), to_text(since)])
    return {
        (int(key), int(meeting), start): bool(recorded) for key, meeting, start, recorded in rows
    }


def note_problem(
    db: Database, problems: list[str], scan_id: int, problem: ItemProblem, now: datetime
) -> None:
    """Add the problem to the scan's list; a dropped row is kept in the scan_problems table."""
    problems.append(problem.describe())
    if problem.dropped:
        db.table("scan_problems").insert(
            {
                "scan_id": scan_id,
                "endpoint": problem.endpoint,
                "field": problem.name,
                "problem": problem.problem,
                "keys": json.dumps(problem.keys, default=str),
                "seen_at": to_text(now),
            }
        )


def begin_scan(db: Database, now: datetime, full: bool) -> int:
    """Record a scan's start; returns its id."""
    table = db.table("scans")
    table.insert({"started_at": to_text(now), "full": int(full), "complete": 0})
    return int(str(table.last_pk))


def end_scan(
    db: Database, scan_id: int, *, calls: int, incomplete: list[str], now: datetime
) -> None:
    """Record a scan's end: its calls and the windows it could not read."""
    db.table("scans").update(
        scan_id,
        {
            "finished_at": to_text(now),
            "calls": calls,
            "complete": int(not incomplete),
            "incomplete": json.dumps(incomplete),
        },
    )
