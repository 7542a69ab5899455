"""Self-contradicting API data: a session whose times or organizer do not hold together is unknown.

The API's answer is only trusted where it agrees with itself and with the question asked. A
session that started outside the window that was asked for, after now, or ended before it
started, or that is listed under two organizers, has its times stored as unknown (so no rule can
find it due: it is never removed) and the contradiction recorded as the session's problem.
Under two organizers, the row keeps the later one's key with unknown times: both are unknown. Times
before 2000-01-01 (sentinels such as `1970-01-01T00:00:00.+0000`) are refused when parsed
(goto/models.py) and arrive here as unknown already. The next scan that reads the session
without a contradiction stores it afresh.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlite_utils import Database

from retention.engine.inventory import WindowResult
from retention.goto.models import HistoricalSession, ItemProblem


def distrust_contradictions(
    db: Database, window: WindowResult, scan_id: int, now: datetime
) -> WindowResult:
    """The window with each contradicted session's times made unknown and its problem added."""
    endpoint = f"/organizers/{window.organizer.organizer_key}/historicalMeetings"
    sessions: list[HistoricalSession] = []
    problems = list(window.problems)
    for index, listed in enumerate(window.sessions):
        found = _contradictions(db, window, listed, scan_id, now)
        if not found:
            sessions.append(listed)
            continue
        sessions.append(listed.model_copy(update={"start_time": None, "end_time": None}))
        keys: dict[str, object] = {"sessionId": listed.session_id}
        problems.extend(
            ItemProblem(endpoint, index, name, text, dropped=False, keys=keys)
            for name, text in found
        )
    return replace(window, sessions=sessions, problems=problems)


def _contradictions(
    db: Database, window: WindowResult, session: HistoricalSession, scan_id: int, now: datetime
) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    start, end = session.start_time, session.end_time
    if start is not None and not window.start <= start <= window.end:
        found.append(
            (
                "startTime",
                f"is {start.isoformat()}, outside the window asked for"
                f" ({window.start.isoformat()} .. {window.end.isoformat()})",
            )
        )
    for name, moment in (("startTime", start), ("endTime", end)):
        if moment is not None and moment > now:
            found.append((name, f"is {moment.isoformat()}, after now ({now.isoformat()})"))
    if start is not None and end is not None and end < start:
        found.append(("endTime", f"is {end.isoformat()}, before the start {start.isoformat()}"))
    asked = window.organizer.organizer_key
    if session.organizer_key != asked:
        found.append(
            (
                "organizerKey",
                f"is {session.organizer_key} in the history of organizer {asked}",
            )
        )
    other = _listed_under(db, session.session_id, scan_id)
    if other is not None and other != asked:
        found.append(
            (
                "sessionId",
                f"{session.session_id} is listed under organizers {other} and {asked}"
                " (both unknown until the API agrees with itself)",
            )
        )
    return found


def _listed_under(db: Database, session_id: int, scan_id: int) -> int | None:
    """The organizer this scan already stored the session under, if any."""
    row = db.execute(
        "SELECT organizer_key FROM sessions WHERE session_id = ? AND last_scan = ?",
        [session_id, scan_id],
    ).fetchone()
    return None if row is None else int(row[0])
