"""Self-contradicting API data: a session whose times or organizer do not hold together is unknown.

The API's answer is only trusted where it agrees with itself and with the question asked. A
session that started outside the window that was asked for, after now, or ended before it
started, whose `duration` differs from its end minus its start by more than `DURATION_SLACK`,
or that is listed under two organizers, has its times stored as unknown (so no rule can find it
due: it is never removed) and the contradiction recorded as the session's problem. Such a read
keeps the session unknown for the rest of the scan, whatever another read of it says
(inventory.py); one session id read with two identities stays unknown until a complete full
scan reads it with one. Times before 2000-01-01 (sentinels such as `1970-01-01T00:00:00.+0000`)
are refused when parsed (goto/models.py) and arrive here as unknown already.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlite_utils import Database

from retention.engine.inventory import WindowResult, key_text
from retention.goto.models import HistoricalSession, ItemProblem

# `duration` is whole minutes: rounding explains one minute of difference, not more than two.
DURATION_SLACK = timedelta(minutes=2)


def distrust_contradictions(
    db: Database, window: WindowResult, scan_id: int, now: datetime
) -> WindowResult:
    """The window with each contradicted session's times made unknown and its problem added."""
    endpoint = f"/organizers/{window.organizer.organizer_key}/historicalMeetings"
    sessions: list[HistoricalSession] = []
    problems = list(window.problems)
    contradicted: set[int] = set(window.contradicted)
    for index, listed in enumerate(window.sessions):
        found = _contradictions(db, window, listed, scan_id, now)
        if not found:
            sessions.append(listed)
            continue
        sessions.append(listed.model_copy(update={"start_time": None, "end_time": None}))
        contradicted.add(listed.session_id)
        keys: dict[str, object] = {"sessionId": listed.session_id}
        problems.extend(
            ItemProblem(endpoint, index, name, text, dropped=False, keys=keys)
            for name, text in found
        )
    return replace(
        window, sessions=sessions, problems=problems, contradicted=frozenset(contradicted)
    )


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
    minutes = session.duration
    if start is not None and end is not None and minutes is not None:
        lasted = end - start
        # In seconds, as integers: a duration of any size compares without overflow.
        if abs(minutes * 60 - lasted.total_seconds()) > DURATION_SLACK.total_seconds():
            found.append(
                (
                    "duration",
                    f"is {minutes} minutes, but the session ran from {start.isoformat()}"
                    f" to {end.isoformat()} ({lasted.total_seconds() / 60:.0f} minutes)",
                )
            )
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
        [key_text(session_id), scan_id],
    ).fetchone()
    return None if row is None else int(row[0])
