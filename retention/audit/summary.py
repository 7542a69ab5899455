"""The report's figures, read from the record with SQL: totals, groupings, holds, runs."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from retention.audit import policyref

# Actions whose removal takes the recording with it, so its bytes count as removed.
_RECORDING_ACTIONS = ("delete_session", "delete_recordings")
_FAILURES_LISTED = 500


@dataclass(frozen=True, slots=True)
class Group:
    """One bar of a chart: a key (month, policy or action), removals and recording bytes."""

    key: str
    count: int
    bytes: int


@dataclass
class HoldSummary:
    """A hold in force at the latest load, and what the record says it protected."""

    hold_id: str
    reason: str
    expires: str | None
    sessions: set[int] = field(default_factory=set)
    blocked: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run: when and why it started, how it ended, and the policy files it loaded."""

    run: str
    started: str | None
    trigger: str | None
    finished: str | None
    result: str | None
    counts: dict[str, int]
    files: list[tuple[str, str]]


@dataclass
class Summary:
    """Every figure of the report, each computed by one query over the record."""

    outcomes: Counter[str]
    bytes_removed: int
    by_month: list[Group]
    by_policy: list[Group]
    by_action: list[Group]
    holds: list[HoldSummary]
    failures: list[tuple[int, str, str, int, int | None, str | None]]
    refusals: list[tuple[int, str, str | None, str]]
    runs: list[RunSummary]
    texts: dict[str, tuple[str, str]]


def _deleted_groups(conn: sqlite3.Connection, key_sql: str) -> list[Group]:
    rows = conn.execute(
        f"SELECT {key_sql} AS key, count(*), coalesce(sum(CASE WHEN o.action IN"  # noqa: S608
        f" {_RECORDING_ACTIONS!r} THEN json_extract(i.data, '$.recording_bytes') END), 0)"
        " FROM events AS o JOIN events AS i ON i.seq = o.intent_seq"
        " WHERE o.event = 'outcome' AND o.outcome = 'deleted' GROUP BY key ORDER BY key"
    )
    return [Group(str(key), count, int(size)) for key, count, size in rows]


def _holds(conn: sqlite3.Connection) -> list[HoldSummary]:
    latest = conn.execute(
        "SELECT data FROM events WHERE event = 'policy_loaded' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    loaded = policyref.resolve(conn, json.loads(latest[0])) if latest else {"holds": []}
    holds = {
        hold["id"]: HoldSummary(hold["id"], hold["reason"], hold["expires"])
        for hold in loaded["holds"]
    }
    for (data_text,) in conn.execute("SELECT data FROM events WHERE event = 'hold_blocked'"):
        data = json.loads(data_text)
        summary = holds.setdefault(
            data["hold"], HoldSummary(data["hold"], "(no longer loaded)", None)
        )
        summary.sessions.update(data["sessions"])
        summary.blocked.update(data["actions"])
    return sorted(holds.values(), key=lambda hold: hold.hold_id)


def _runs(conn: sqlite3.Connection) -> tuple[list[RunSummary], dict[str, tuple[str, str]]]:
    runs: dict[str, dict[str, Any]] = {}
    texts: dict[str, tuple[str, str]] = {}
    for run, event, moment, data_text in conn.execute(
        "SELECT run, event, time, data FROM events WHERE event IN"
        " ('run_started', 'run_finished', 'policy_loaded') ORDER BY seq"
    ):
        entry = runs.setdefault(run, {"files": [], "counts": {}})
        data = json.loads(data_text)
        if event == "run_started":
            entry.update(started=moment, trigger=data["trigger"])
        elif event == "run_finished":
            entry.update(finished=moment, result=data["result"], counts=data["counts"])
        else:
            data = policyref.resolve(conn, data)
            entry["files"] = [(f["name"], f["sha256"]) for f in data["files"]]
            texts.update({f["sha256"]: (f["name"], f["text"]) for f in data["files"]})
    summaries = [
        RunSummary(
            run=run,
            started=entry.get("started"),
            trigger=entry.get("trigger"),
            finished=entry.get("finished"),
            result=entry.get("result"),
            counts=entry["counts"],
            files=entry["files"],
        )
        for run, entry in runs.items()
    ]
    return summaries, texts


def summarise(conn: sqlite3.Connection) -> Summary:
    """Read every figure of the report from an open (read-only) connection."""
    outcomes = Counter(
        dict(
            conn.execute(
                "SELECT outcome, count(*) FROM events WHERE event = 'outcome' GROUP BY outcome"
            ).fetchall()
        )
    )
    by_action = _deleted_groups(conn, "o.action")
    failures = conn.execute(
        "SELECT o.seq, o.time, o.action, o.session_id, json_extract(o.data, '$.status'),"
        " json_extract(o.data, '$.reason') FROM events AS o"
        " WHERE o.event = 'outcome' AND o.outcome = 'failed' ORDER BY o.seq DESC LIMIT ?",
        [_FAILURES_LISTED],
    ).fetchall()
    refusals = conn.execute(
        "SELECT seq, time, run, json_extract(data, '$.reason') FROM events"
        " WHERE event = 'refused' ORDER BY seq DESC"
    ).fetchall()
    runs, texts = _runs(conn)
    return Summary(
        outcomes=outcomes,
        bytes_removed=sum(group.bytes for group in by_action),
        by_month=_deleted_groups(conn, "substr(o.time, 1, 7)"),
        by_policy=_deleted_groups(conn, "o.policy"),
        by_action=by_action,
        holds=_holds(conn),
        failures=failures,
        refusals=refusals,
        runs=runs,
        texts=texts,
    )
