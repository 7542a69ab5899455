"""Reading the record back: filters, flat rows with stable columns, CSV, JSONL, recent outcomes."""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

from retention.audit.store import canonical_json, format_time, key_is
from retention.audit.timeliness import LATE_OUTCOMES
from retention.times import parse_stored_time, parse_user_time

# The export's columns, in order: a contract with the spreadsheets and scripts that read it.
EXPORT_COLUMNS = (
    "seq",
    "time",
    "event",
    "run",
    "plan",
    "policy",
    "policyHash",
    "action",
    "organizerKey",
    "meetingId",
    "sessionId",
    "subject",
    "subjectMode",
    "startTime",
    "endTime",
    "recordingIds",
    "recordingBytes",
    "attendeeCount",
    "intent",
    "outcome",
    "status",
    "reason",
    "details",
    "hash",
    "prev_hash",
    "dueAt",
    "latenessSeconds",
)
_FROM_COLUMNS = {
    "seq": "seq",
    "time": "time",
    "event": "event",
    "run": "run",
    "plan": "plan",
    "policy": "policy",
    "action": "action",
    "organizerKey": "organizer_key",
    "meetingId": "meeting_id",
    "sessionId": "session_id",
    "intent": "intent_seq",
    "outcome": "outcome",
    "hash": "hash",
    "prev_hash": "prev_hash",
}
_FROM_DATA = {
    "policyHash": "policy_hash",
    "subject": "subject",
    "subjectMode": "subject_mode",
    "startTime": "start_time",
    "endTime": "end_time",
    "recordingIds": "recording_ids",
    "recordingBytes": "recording_bytes",
    "attendeeCount": "attendee_count",
    "status": "status",
    "reason": "reason",
}
# An outcome's due time is its intent's: read with it, for its lateness.
_INTENT_DUE = (
    "(SELECT json_extract(i.data, '$.due_at') FROM events AS i"
    " WHERE i.seq = events.intent_seq AND i.event = 'intent')"
)
_SELECT = ", ".join(("data", _INTENT_DUE, *_FROM_COLUMNS.values()))
_KEYS = ("organizerKey", "meetingId", "sessionId")
# A cell starting with one of these is a formula to a spreadsheet; subjects are free text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Filters:
    """Which rows to read: time range [since, until), policy name, organizer key, and rows
    strictly after a seq (where a collector left off)."""

    since: str | None = None
    until: str | None = None
    policy: str | None = None
    organizer: int | None = None
    after_seq: int | None = None

    def where(self, table: str = "events") -> tuple[str, list[Any]]:
        """A WHERE clause (always true when no filter is set) and its parameters."""
        clauses, params = ["1 = 1"], []
        for column, operator, value in (
            ("seq", ">", self.after_seq),
            ("time", ">=", self.since),
            ("time", "<", self.until),
            ("policy", "=", self.policy),
        ):
            if value is not None:
                clauses.append(f"{table}.{column} {operator} ?")
                params.append(value)
        if self.organizer is not None:
            clauses.append(key_is(f"{table}.organizer_key"))
            params.append(str(self.organizer))
        return " AND ".join(clauses), params


def parse_when(text: str, *, option: str, end: bool = False) -> str:
    """A date or ISO time as the log's time format; a bare date as `--until` includes that day."""
    return format_time(parse_user_time(text, option=option, end_of_day=end))


def iter_export(conn: sqlite3.Connection, filters: Filters) -> Iterator[dict[str, Any]]:
    """Every matching event as one flat dict with EXPORT_COLUMNS keys, streamed in seq order."""
    where, params = filters.where()
    cursor = conn.execute(
        f"SELECT {_SELECT} FROM events WHERE {where} ORDER BY seq",  # noqa: S608
        params,
    )
    names = tuple(_FROM_COLUMNS)
    while batch := cursor.fetchmany(1024):
        for data_text, intent_due, *values in batch:
            flat = dict.fromkeys(EXPORT_COLUMNS)
            flat.update(zip(names, values, strict=True))
            # Keys are digit strings, whether the row stores an integer (older) or text.
            for column in _KEYS:
                if flat[column] is not None:
                    flat[column] = str(flat[column])
            data = json.loads(data_text)
            for column, key in _FROM_DATA.items():
                flat[column] = data.pop(key, None)
            flat["dueAt"] = data.pop("due_at", None) if flat["event"] == "intent" else intent_due
            flat["details"] = data or None
            flat["latenessSeconds"] = _lateness(flat)
            yield flat


def _lateness(row: dict[str, Any]) -> float | None:
    """A removal made: its outcome's time minus its due time, in seconds."""
    if row["outcome"] not in LATE_OUTCOMES or row["dueAt"] is None:
        return None
    made, due = parse_stored_time(str(row["time"])), parse_stored_time(str(row["dueAt"]))
    return round((made - due).total_seconds(), 3)


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """One JSON object per line, keys in EXPORT_COLUMNS order; returns the row count."""
    count = 0
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    """CSV with a UTF-8 byte-order mark and a header, for spreadsheets; returns the row count."""
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([_cell(row[column]) for column in EXPORT_COLUMNS])
        count += 1
    return count


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = " ".join(str(item) for item in value)
    elif isinstance(value, dict):
        value = canonical_json(value).decode()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


@dataclass(frozen=True, slots=True)
class Removal:
    """One outcome with the facts of its intent: a line of `audit show`, a row of the report."""

    seq: int
    time: str
    outcome: str
    action: str
    policy: str
    organizer_key: int
    meeting_id: int
    session_id: int
    start_time: str | None
    recording_bytes: int | None
    status: int | None
    reason: str | None


def removals(
    conn: sqlite3.Connection,
    filters: Filters,
    *,
    newest_first: bool = False,
    limit: int | None = None,
) -> list[Removal]:
    """The outcomes matching the filters, oldest first (or newest first), at most `limit`."""
    where, params = filters.where("o")
    # The WHERE clause is built from fixed column names; values are parameters.
    rows = conn.execute(
        "SELECT o.seq, o.time, o.outcome, o.action, o.policy, o.organizer_key, o.meeting_id,"  # noqa: S608
        " o.session_id, json_extract(i.data, '$.start_time'),"
        " json_extract(i.data, '$.recording_bytes'), json_extract(o.data, '$.status'),"
        " json_extract(o.data, '$.reason')"
        " FROM events AS o LEFT JOIN events AS i ON i.seq = o.intent_seq"
        f" WHERE o.event = 'outcome' AND {where}"
        f" ORDER BY o.seq {'DESC' if newest_first else 'ASC'} LIMIT ?",
        [*params, -1 if limit is None else limit],  # SQLite: a negative LIMIT is none
    ).fetchall()
    return [Removal(*row) for row in rows]
