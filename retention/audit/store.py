"""The on-disk form of the record: schema, append-only triggers, connections and the hash recipe."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from retention.canonical import canonical_json as canonical_json  # noqa: PLC0414 (re-export)
from retention.errors import InvalidInput, RuntimeFailure

GENESIS_HASH = "0" * 64
BUSY_TIMEOUT_MS = 30_000
EVENT_KINDS = (
    "run_started",
    "policy_loaded",
    "plan_approved",
    "intent",
    "outcome",
    "refused",
    "hold_blocked",
    "run_finished",
    "checkpoint",
    "log_started",
    "plan_proposed",
    "plan_expired",
    "notice_sent",
    "hold_scope_left",
    "adopted",
    "reappeared",
)
# The CHECK lists of logs made by earlier versions: before `log_started`, before proposals and
# notices, before holds' kept coverage, `adopted` and `reappeared`. Opening such a log for
# writing widens its list (m002, m003).
_EARLIER_KINDS = (EVENT_KINDS[:9], EVENT_KINDS[:10], EVENT_KINDS[:13])
OUTCOMES = ("deleted", "already_absent", "failed", "skipped_hold", "skipped_changed")
# Every column of `events`; a row's hash covers all of them except `hash` itself.
COLUMNS = (
    "seq",
    "time",
    "event",
    "run",
    "plan",
    "policy",
    "action",
    "organizer_key",
    "meeting_id",
    "session_id",
    "intent_seq",
    "outcome",
    "data",
    "prev_hash",
    "hash",
)
HASHED_COLUMNS = tuple(sorted(c for c in COLUMNS if c != "hash"))

_outcomes = ", ".join(f"'{outcome}'" for outcome in OUTCOMES)


# The key columns: ANY since keys are digit strings of any length. Rows written before hold
# integers (and are hashed as such); rows written since hold TEXT. Compare with `key_is`.
KEY_COLUMNS = ("organizer_key", "meeting_id", "session_id")
_KEY_DIGITS = re.compile(r"[0-9]+")


def _events_table(kinds: tuple[str, ...], key_type: str = "ANY") -> str:
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    return f"""CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ({listed})),
    run TEXT,
    plan TEXT,
    policy TEXT,
    action TEXT,
    organizer_key {key_type},
    meeting_id {key_type},
    session_id {key_type},
    intent_seq INTEGER,
    outcome TEXT CHECK (outcome IS NULL OR outcome IN ({_outcomes})),
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
) STRICT"""


EVENTS_TABLE = _events_table(EVENT_KINDS)
# What earlier versions created: integer keys, with this version's kinds or earlier ones.
_INTEGER_KEY_TABLES = {_events_table(k, "INTEGER") for k in (EVENT_KINDS, *_EARLIER_KINDS)}
_ACCEPTED_EVENTS_TABLES = {EVENTS_TABLE, *_INTEGER_KEY_TABLES}
META_TABLE = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT"
# The triggers that make the record append-only; verify checks each one is present, unaltered.
TRIGGERS = {
    "events_no_update": """CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'audit record is append-only: UPDATE refused'); END""",
    "events_no_delete": """CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'audit record is append-only: DELETE refused'); END""",
    "events_chain": f"""CREATE TRIGGER events_chain BEFORE INSERT ON events
BEGIN
    SELECT RAISE(ABORT, 'audit record: seq must be the next sequence number')
    WHERE NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events);
    SELECT RAISE(ABORT, 'audit record: prev_hash must be the hash of the last row')
    WHERE NEW.prev_hash IS NOT coalesce(
        (SELECT hash FROM events ORDER BY seq DESC LIMIT 1), '{GENESIS_HASH}');
    SELECT RAISE(ABORT, 'audit record: an outcome must name an intent')
    WHERE NEW.event = 'outcome' AND NOT EXISTS (
        SELECT 1 FROM events WHERE seq = NEW.intent_seq AND event = 'intent');
END""",  # noqa: S608 (a constant, not input)
    "meta_no_update": """CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'audit record metadata is immutable'); END""",
    "meta_no_delete": """CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'audit record metadata is immutable'); END""",
}
INDEXES = {
    "events_one_outcome": "CREATE UNIQUE INDEX events_one_outcome ON events (intent_seq)"
    " WHERE event = 'outcome'",
    "events_session": "CREATE INDEX events_session ON events (session_id)",
    "events_event": "CREATE INDEX events_event ON events (event, time)",
}

MIGRATIONS = Migrations("retention.audit")


@MIGRATIONS()
def m001_events(db: Database) -> None:
    """The events table, its metadata, indexes and the append-only triggers."""
    for statement in (EVENTS_TABLE, META_TABLE, *INDEXES.values(), *TRIGGERS.values()):
        db.execute(statement)
    # The salt keys the subject hash: equal subjects correlate within this log only.
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('log_id', ?), ('subject_salt', ?)",
        [secrets.token_hex(16), secrets.token_hex(32)],
    )


@MIGRATIONS()
def m002_event_kinds(db: Database) -> None:
    """Widen an earlier log's CHECK list of event kinds to this version's (rows are unchanged).

    Only a CHECK is loosened, which SQLite's documented `writable_schema` procedure allows
    without rebuilding the table (and so without touching an append-only row).
    """
    (current,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    earlier = {_normalise_sql(_events_table(kinds, "INTEGER")) for kinds in _EARLIER_KINDS}
    if _normalise_sql(current) not in earlier:
        return
    _rewrite_events_table(db, _events_table(EVENT_KINDS, "INTEGER"))


@MIGRATIONS()
def m003_keys_any(db: Database) -> None:
    """Let the key columns hold keys of any length: INTEGER becomes ANY (a STRICT table allows
    it), and widen the kinds to this version's (`hold_scope_left`, `adopted`, `reappeared`).
    Rows are unchanged: an integer stays an integer, hashed as one; new rows store TEXT.

    Only the declared type of three columns and a CHECK are loosened, which changes nothing
    stored (the same `writable_schema` procedure as m002).
    """
    (current,) = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    if _normalise_sql(current) in {_normalise_sql(sql) for sql in _INTEGER_KEY_TABLES}:
        _rewrite_events_table(db, EVENTS_TABLE)


def _rewrite_events_table(db: Database, sql: str) -> None:
    (version,) = db.execute("PRAGMA schema_version").fetchone()
    db.execute("PRAGMA writable_schema = ON")
    db.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'events'", [sql])
    db.execute(f"PRAGMA schema_version = {int(version) + 1}")
    db.execute("PRAGMA writable_schema = OFF")


def key_is(column: str) -> str:
    """A WHERE term matching a key column to a `?` given as text, whether the row stores the
    key as an integer (older rows) or as text."""
    return f"CAST({column} AS TEXT) = ?"


def key_value(value: object) -> str | None:
    """A key as a new row stores it: its digits as text (None stays None); anything but
    digits is refused, as the INTEGER columns of earlier versions refused it."""
    if value is None:
        return None
    text = str(value)
    if isinstance(value, bool) or not _KEY_DIGITS.fullmatch(text):
        raise AuditError(f"a key must be digits, got {value!r}")
    return text


class AuditError(RuntimeFailure):
    """The audit record refused an event or could not store it."""


class AuditInputError(InvalidInput):
    """An audit file or key given by the user cannot be read."""


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """SHA-256 of the previous hash's 32 bytes followed by the canonical JSON of the row."""
    body = {column: row[column] for column in HASHED_COLUMNS}
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(body)).hexdigest()


# A row of `events` as `walk_chain` gives it: seq, time, event, data, prev_hash, the stored
# hash, and the hash its contents give. A plain tuple, unpacked by the caller: verify walks
# millions of rows, and a named tuple's construction and attribute reads cost a tenth more.
ChainRow = tuple[int, str, str, str, str, str, str]
_SELECT_CHAIN = f"SELECT {', '.join(HASHED_COLUMNS)}, hash FROM events"  # noqa: S608 (constant)
_SEQ, _TIME, _EVENT, _DATA, _PREV = (
    HASHED_COLUMNS.index(column) for column in ("seq", "time", "event", "data", "prev_hash")
)


def walk_chain(conn: sqlite3.Connection, after: int | None = None) -> Iterator[ChainRow]:
    """Every row of `events` in seq order (only those after row `after`, if given), rehashed.

    The one walk of the chain: `audit verify` and the check before write judge what it yields.
    A prev_hash that is not hex is hashed as its text, so the row is reported, not a crash.
    """
    if after is None:
        cursor = conn.execute(f"{_SELECT_CHAIN} ORDER BY seq")
    else:
        cursor = conn.execute(f"{_SELECT_CHAIN} WHERE seq > ? ORDER BY seq", [after])
    # Locals, not globals, in the loop: it runs once per row of the record.
    sha256, fromhex, encode, columns = hashlib.sha256, bytes.fromhex, canonical_json, HASHED_COLUMNS
    seq_at, time_at, event_at, data_at, prev_at = _SEQ, _TIME, _EVENT, _DATA, _PREV
    while batch := cursor.fetchmany(2048):
        for row in batch:
            prev_hash = row[prev_at]
            body = encode(dict(zip(columns, row, strict=False)))
            try:
                computed = sha256(fromhex(prev_hash) + body).hexdigest()
            except (TypeError, ValueError):
                computed = sha256(str(prev_hash).encode() + body).hexdigest()
            yield (
                row[seq_at],
                row[time_at],
                row[event_at],
                row[data_at],
                prev_hash,
                row[-1],
                computed,
            )


def event_data(text: str) -> dict[str, Any]:
    """An event's `data` as a JSON object; {} when it is not one (a damaged or foreign row)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def format_time(moment: datetime) -> str:
    """An aware datetime as UTC ISO 8601 with microseconds and a Z."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise AuditError(f"the audit clock gave a naive time ({moment}); it must be aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def iso_or_none(moment: date | None) -> str | None:
    """A time as the record writes it, a date as ISO, None as None."""
    if moment is None:
        return None
    if isinstance(moment, datetime):
        return format_time(moment)
    return moment.isoformat()


def connect_writer(path: Path) -> Database:
    """Open (creating and migrating) the log for appending: WAL, synchronous=FULL, autocommit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # check_same_thread=False: the executor appends from one writer thread, so that an
        # fsync never stalls the event loop; appends stay serialized (one thread, one process
        # lock per transaction).
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,
        )
        _durable(conn)
        db = Database(conn)
        # IMMEDIATE takes the write lock first, so two processes creating one log do not race.
        conn.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS.apply(db)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise AuditError(
            f"cannot open the audit record {path}: {exc}",
            hint="check the file is an audit database and the state directory is writable",
        ) from exc
    return db


def connect_reader(path: Path) -> sqlite3.Connection:
    """Open an existing log read-only (verify, export, report): never creates a file."""
    if not path.is_file():
        raise AuditInputError(
            f"no audit record at {path}",
            hint="pass --db FILE or set RETENTION_STATE_DIR to the directory holding audit.db",
        )
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise AuditInputError(
            f"{path} is not a readable SQLite database: {exc}",
            hint="pass the audit.db file of the state directory",
        ) from exc
    return conn


def _durable(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise AuditError(f"the audit record cannot use WAL journaling (got {mode})")
    conn.execute("PRAGMA synchronous=FULL")


def _normalise_sql(sql: str | None) -> str:
    return re.sub(r"\s+", " ", sql or "").strip()


def schema_problems(conn: sqlite3.Connection) -> list[str]:
    """Objects of the log's schema that are missing, altered or unexpected, as sentences."""
    found = {
        name: (kind, _normalise_sql(sql))
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            " AND tbl_name IN ('events', 'meta')"
        )
    }
    expected: dict[str, tuple[str, str]] = {
        "events": ("table", _normalise_sql(EVENTS_TABLE)),
        "meta": ("table", _normalise_sql(META_TABLE)),
    }
    expected |= {name: ("index", _normalise_sql(sql)) for name, sql in INDEXES.items()}
    expected |= {name: ("trigger", _normalise_sql(sql)) for name, sql in TRIGGERS.items()}
    accepted = {_normalise_sql(sql) for sql in _ACCEPTED_EVENTS_TABLES}
    problems = []
    for name, (kind, sql) in expected.items():
        if name not in found:
            problems.append(f"{kind} {name} is missing")
        elif name == "events" and found[name][1] in accepted:
            continue
        elif found[name][1] != sql:
            problems.append(f"{kind} {name} is altered")
    problems.extend(
        f"unexpected {kind} {name}" for name, (kind, _sql) in found.items() if name not in expected
    )
    return problems


def read_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The log's metadata: its id and the subject salt."""
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def unsealed_end(conn: sqlite3.Connection) -> int | None:
    """The first `run_finished` row that has rows after it, or None.

    Every run is sealed by a checkpoint after its `run_finished`: in a log with no checkpoint
    at all, such a row means the seals were removed (a first run killed before its seal leaves
    its `run_finished` as the last row).
    """
    row = conn.execute(
        "SELECT seq FROM events WHERE event = 'run_finished'"
        " AND seq < (SELECT max(seq) FROM events) ORDER BY seq LIMIT 1"
    ).fetchone()
    return None if row is None else int(row[0])
