"""Timeliness as the record holds it: first loads of each policy content, lateness, overdue.

An intent carries `due_at`; its outcome's lateness is the outcome's time minus that. Each run
that decided the whole inventory carries `overdue` in its `run_finished` ({policy: {overdue,
oldest_due_at, reasons}}). Read-only, on any connection to the record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from retention.audit.store import event_data
from retention.times import parse_stored_time

# The outcomes that are a removal made: only they have a lateness.
LATE_OUTCOMES = ("deleted", "already_absent")


def first_loads(conn: sqlite3.Connection, hashes: Iterable[str]) -> dict[str, tuple[str, str]]:
    """For each policy content hash asked, (policy name, time) of the first full
    `policy_loaded` naming it; hashes the record never loaded are left out."""
    wanted = set(hashes)
    found: dict[str, tuple[str, str]] = {}
    rows = conn.execute(
        "SELECT time, data FROM events WHERE event = 'policy_loaded'"
        " AND json_extract(data, '$.policies') IS NOT NULL ORDER BY seq"
    )
    for time, data_text in rows:
        if not wanted - set(found):
            break
        for entry in event_data(data_text).get("policies") or ():
            content = str(entry.get("hash"))
            if content in wanted and content not in found:
                found[content] = (str(entry.get("name")), str(time))
    return found


def run_outcomes(conn: sqlite3.Connection, run_id: str) -> dict[tuple[int, str], str]:
    """What this run's outcomes said, by (session id, action)."""
    rows = conn.execute(
        "SELECT CAST(session_id AS INTEGER), action, outcome FROM events"
        " WHERE event = 'outcome' AND run = ?",
        [run_id],
    )
    return {(int(session), str(action)): str(outcome) for session, action, outcome in rows}


@dataclass(frozen=True, slots=True)
class Lateness:
    """One removal made: its policy, when it was made, when it was due."""

    seq: int
    policy: str
    made_at: datetime
    due_at: datetime

    @property
    def seconds(self) -> float:
        return (self.made_at - self.due_at).total_seconds()


def lateness_since(
    conn: sqlite3.Connection, after_seq: int = 0, since: str | None = None, until: str | None = None
) -> Iterator[Lateness]:
    """Each removal made (outcome `deleted` or `already_absent`) whose intent has a `due_at`,
    after row `after_seq` and, when given, in [since, until)."""
    clauses = ["o.event = 'outcome'", "o.seq > ?", "o.outcome IN ('deleted', 'already_absent')"]
    params: list[Any] = [after_seq]
    for operator, value in ((">=", since), ("<", until)):
        if value is not None:
            clauses.append(f"o.time {operator} ?")
            params.append(value)
    rows = conn.execute(
        "SELECT o.seq, coalesce(o.policy, ''), o.time, json_extract(i.data, '$.due_at')"  # noqa: S608
        " FROM events AS o JOIN events AS i ON i.seq = o.intent_seq"
        f" WHERE {' AND '.join(clauses)} AND json_extract(i.data, '$.due_at') IS NOT NULL"
        " ORDER BY o.seq",
        params,
    )
    for seq, policy, made, due in rows:
        yield Lateness(int(seq), str(policy), parse_stored_time(made), parse_stored_time(due))


@dataclass(frozen=True, slots=True)
class OverduePoint:
    """What one run's end found overdue, per policy (only runs that decided everything)."""

    run: str
    time: datetime
    result: str
    policies: dict[str, dict[str, Any]]


def overdue_points(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> list[OverduePoint]:
    """Every `run_finished` carrying an overdue summary in [since, until), oldest first."""
    clauses, params = ["event = 'run_finished'"], []
    for operator, value in ((">=", since), ("<", until)):
        if value is not None:
            clauses.append(f"time {operator} ?")
            params.append(value)
    rows = conn.execute(
        f"SELECT run, time, data FROM events WHERE {' AND '.join(clauses)}"  # noqa: S608
        " AND json_extract(data, '$.overdue') IS NOT NULL ORDER BY seq",
        params,
    )
    points = []
    for run, time, data_text in rows:
        data = json.loads(data_text)
        when = parse_stored_time(time)
        points.append(OverduePoint(str(run), when, str(data.get("result")), data["overdue"]))
    return points


def run_starts(conn: sqlite3.Connection, since: str | None, until: str | None) -> list[datetime]:
    """When each run of the period started (gaps in the overdue series are found between)."""
    clauses, params = ["event = 'run_started'"], []
    for operator, value in ((">=", since), ("<", until)):
        if value is not None:
            clauses.append(f"time {operator} ?")
            params.append(value)
    rows = conn.execute(
        f"SELECT time FROM events WHERE {' AND '.join(clauses)} ORDER BY seq",  # noqa: S608
        params,
    )
    return [parse_stored_time(time) for (time,) in rows]
