"""The working-state SQLite database: one function opens it, sqlite-utils migrations shape it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from retention.errors import RuntimeFailure
from retention.times import parse_stored_time
from retention.urls import has_userinfo, without_userinfo

# Each migration runs once, in order, in its own transaction; sqlite-utils records it by name.
MIGRATIONS = Migrations("retention.state")
# What databases written before the move to named migrations count as applied: their
# `PRAGMA user_version` is the number of these that ran.
_NUMBERED = ("m001_inventory", "m002_plans")

Columns = dict[str, type]
# Every table as its migration creates it: the columns in order, then the primary key. A later
# change to a table is a new migration altering it, never an edit here.
_TABLES: dict[str, tuple[Columns, str | tuple[str, ...]]] = {
    "organizers": (
        {
            "organizer_key": int,
            "email": str,
            "group_key": int,
            "group_name": str,
            "status": str,
            "seen_at": str,
        },
        "organizer_key",
    ),
    "groups": (
        {
            "group_key": int,
            "name": str,
            "parent_key": int,
            "status": str,
            "num_organizers": int,
            "seen_at": str,
        },
        "group_key",
    ),
    "sessions": (
        {
            "session_id": int,
            "meeting_id": int,
            "organizer_key": int,
            "organizer_email": str,
            "group_key": int,
            "group_name": str,
            "subject": str,
            "meeting_type": str,
            "start_time": str,
            "end_time": str,
            "duration_minutes": int,
            "attendee_count": int,
            "recording_id": str,
            "recording_name": str,
            "recording_bytes": int,
            "has_transcript": int,
            "problems": str,
            "first_seen": str,
            "last_seen": str,
            "last_scan": int,
            "recording_removed_at": str,
            "attendees_removed_at": str,
            "removed_at": str,
        },
        "session_id",
    ),
    "watermarks": (
        {"organizer_key": int, "scanned_through": str, "updated_at": str},
        "organizer_key",
    ),
    "scan_problems": (
        {
            "id": int,
            "scan_id": int,
            "endpoint": str,
            "field": str,
            "problem": str,
            "keys": str,
            "seen_at": str,
        },
        "id",
    ),
    "scans": (
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "full": int,
            "calls": int,
            "complete": int,
            "incomplete": str,
        },
        "id",
    ),
    "plans": (
        {"plan_id": str, "plan_hash": str, "created_at": str, "applied_by_run": str},
        "plan_id",
    ),
    "account": ({"id": int, "api_base_url": str, "account_key": str, "recorded_at": str}, "id"),
    "alert_conditions": (
        {"condition": str, "title": str, "first_seen": str, "last_sent": str, "sent_count": int},
        "condition",
    ),
    "notices_sent": (
        {
            "session_id": int,
            "action": str,
            "organizer_key": int,
            "policy": str,
            "due_at": str,
            "sent_at": str,
            "run_id": str,
        },
        ("session_id", "action"),
    ),
    # Keys are stored as digit strings from here on (any length; see docs/audit.md).
    "hold_coverage": (
        {"hold_id": str, "session_id": str, "organizer_key": str, "since": str},
        ("hold_id", "session_id"),
    ),
    "hold_scope_left": (
        {"hold_id": str, "organizer_key": str, "sessions": int, "reported_at": str},
        ("hold_id", "organizer_key"),
    ),
    "names_seen": (
        {"kind": str, "key": str, "name": str, "first_seen": str, "last_seen": str},
        ("kind", "key", "name"),
    ),
    "postponements": (
        {
            "session_id": str,
            "action": str,
            "until": str,
            "reason": str,
            "by": str,
            "plan_id": str,
            "decided_at": str,
            "lifted_at": str,
            "lifted_by": str,
        },
        ("session_id", "action"),
    ),
}


def _create(db: Database, *tables: str) -> None:
    """Create these tables as `_TABLES` describes them, in this order."""
    for name in tables:
        columns, pk = _TABLES[name]
        db.table(name).create(columns, pk=pk)


@MIGRATIONS()
def m001_inventory(db: Database) -> None:
    """Organizers, groups, sessions, watermarks, scans and their problems."""
    _create(db, "organizers", "groups", "sessions")
    db.table("sessions").create_index(["organizer_key", "start_time"])
    _create(db, "watermarks", "scan_problems", "scans")


@MIGRATIONS()
def m002_plans(db: Database) -> None:
    """Plans made here, their hash and the run that applied each."""
    _create(db, "plans")


@MIGRATIONS()
def m003_account(db: Database) -> None:
    """The account this state directory belongs to: recorded on first use, then checked."""
    _create(db, "account")


@MIGRATIONS()
def m004_alerts_and_notices(db: Database) -> None:
    """Alert conditions in force (when each last went out), and the owner notices sent."""
    _create(db, "alert_conditions", "notices_sent")


@MIGRATIONS()
def m005_hold_coverage_and_names(db: Database) -> None:
    """What each hold has covered since it took effect, the organizers whose sessions it keeps
    out of its scope (last reported count), and every organizer and group name ever listed."""
    _create(db, "hold_coverage", "hold_scope_left", "names_seen")
    db.table("hold_coverage").create_index(["session_id"])
    db.execute(
        "INSERT OR IGNORE INTO names_seen (kind, key, name, first_seen, last_seen) "
        "SELECT 'organizer', CAST(organizer_key AS TEXT), COALESCE(email, ''), seen_at, seen_at "
        "FROM organizers"
    )
    db.execute(
        "INSERT OR IGNORE INTO names_seen (kind, key, name, first_seen, last_seen) "
        "SELECT 'group', CAST(group_key AS TEXT), COALESCE(name, ''), seen_at, seen_at "
        "FROM groups"
    )


@MIGRATIONS()
def m006_account_url_without_credentials(db: Database) -> None:
    """The bound base URL without a user part an older version let through (user:password@):
    the credential leaves the state, and the account binding compares URLs without it."""
    row = db.execute("SELECT api_base_url FROM account WHERE id = 1").fetchone()
    if row is not None and has_userinfo(str(row[0])):
        db.execute(
            "UPDATE account SET api_base_url = ? WHERE id = 1", [without_userinfo(str(row[0]))]
        )


def noticed_keys(db: Database) -> dict[tuple[int, str], datetime]:
    """Every (session id, action) its organizer was told of, with when (owner notices)."""
    return {
        (int(row["session_id"]), str(row["action"])): parse_stored_time(str(row["sent_at"]))
        for row in db.query("SELECT session_id, action, sent_at FROM notices_sent")
    }


def account_of(db: Database) -> str | None:
    """The account key this state directory was first used with, if one was recorded."""
    row = next(db.query("SELECT account_key FROM account WHERE id = 1"), None)
    return None if row is None else str(row["account_key"])


def bound_account(db: Database) -> tuple[str, str] | None:
    """(api_base_url without a user part, account_key) recorded on first use, or None for a
    new state directory."""
    row = next(db.query("SELECT api_base_url, account_key FROM account WHERE id = 1"), None)
    if row is None:
        return None
    return without_userinfo(str(row["api_base_url"])), str(row["account_key"])


def bind_account(db: Database, api_base_url: str, account_key: str, at: datetime) -> None:
    """Record the account on first use; later runs compare against it."""
    with db.atomic():
        db.execute(
            "INSERT OR IGNORE INTO account (id, api_base_url, account_key, recorded_at) "
            "VALUES (1, ?, ?, ?)",
            [api_base_url, account_key, at.isoformat()],
        )


def record_plan(db: Database, plan_id: str, plan_hash: str, created_at: datetime) -> None:
    """Remember a plan this state directory made, so that `apply` can tell it was not altered."""
    with db.atomic():
        db.execute(
            "INSERT INTO plans (plan_id, plan_hash, created_at) VALUES (?, ?, ?)",
            [plan_id, plan_hash, created_at.isoformat()],
        )


def known_plan_hash(db: Database, plan_id: str) -> str | None:
    """The hash recorded when the plan was made here, or None for a plan made elsewhere."""
    row = _plan(db, plan_id)
    return None if row is None else str(row["plan_hash"])


def mark_plan_applied(db: Database, plan_id: str, run_id: str) -> None:
    """Record the run that executed the plan: a plan is applied once."""
    with db.atomic():
        db.execute("UPDATE plans SET applied_by_run = ? WHERE plan_id = ?", [run_id, plan_id])


def plan_applied_by(db: Database, plan_id: str) -> str | None:
    """The run that already executed this plan, if one did."""
    row = _plan(db, plan_id)
    return None if row is None or row["applied_by_run"] is None else str(row["applied_by_run"])


def _plan(db: Database, plan_id: str) -> dict[str, Any] | None:
    rows = db.query("SELECT plan_hash, applied_by_run FROM plans WHERE plan_id = ?", [plan_id])
    return next(rows, None)


def open_state_db(path: Path) -> Database:
    """Open (creating if needed) the state database in WAL mode, migrated to the latest version."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = Database(path)
        db.execute("PRAGMA journal_mode=WAL")
        # The working state is derived (a rescan rebuilds it; the audit record is the record):
        # in WAL, NORMAL survives a crash of the process and skips an fsync per commit.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.execute("PRAGMA foreign_keys=ON")
        _migrate(db)
    except sqlite3.Error as exc:
        raise RuntimeFailure(
            f"cannot open the state database {path}: {exc}",
            hint="check RETENTION_STATE_DIR and that no other program holds the file",
        ) from exc
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot create the state directory {path.parent}: {exc.strerror}",
            hint="check RETENTION_STATE_DIR and its permissions",
        ) from exc
    return db


def schema_version(db: Database) -> int:
    """How many of the state migrations this database has had."""
    return len(MIGRATIONS.applied(db))


def _migrate(db: Database) -> None:
    _adopt_numbered(db)
    # On an empty database every registered migration is pending: these are the known ones.
    known = {migration.name for migration in MIGRATIONS.pending(Database(memory=True))}
    unknown = [m.name for m in MIGRATIONS.applied(db) if m.name not in known]
    if unknown:
        raise RuntimeFailure(
            f"the state database has migrations this program does not know ({', '.join(unknown)})",
            hint="run the newer retention version, or point RETENTION_STATE_DIR elsewhere",
        )
    MIGRATIONS.apply(db)


def _adopt_numbered(db: Database) -> None:
    """Record as applied the numbered migrations an older version ran (by `user_version`)."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 or MIGRATIONS.applied(db):
        return
    if version > len(_NUMBERED):
        raise RuntimeFailure(
            f"the state database is at schema version {version}, "
            f"newer than this program knows ({len(_NUMBERED)})",
            hint="run the newer retention version, or point RETENTION_STATE_DIR elsewhere",
        )
    MIGRATIONS.ensure_migrations_table(db)
    applied_at = str(datetime.now(UTC))
    with db.atomic():
        db.table(MIGRATIONS.migrations_table).insert_all(
            {"migration_set": MIGRATIONS.name, "name": name, "applied_at": applied_at}
            for name in _NUMBERED[:version]
        )


@MIGRATIONS()
def m007_session_facts(db: Database) -> None:
    """What a session's facts rest on: whether its recording was read whole, the identity it
    was first read with and where, and the contradictions that keep its times unknown."""
    sessions = db.table("sessions")
    for name, kind in (
        ("recording_unknown", int),
        ("identity_start", str),
        ("identity_end", str),
        ("read_from", str),
        ("conflicts", str),
        ("conflict_scan", int),
        ("conflict_sticky", int),
    ):
        sessions.add_column(name, kind)
    # The rows already held were read with these times: the identity later reads must match.
    db.execute("UPDATE sessions SET identity_start = start_time, identity_end = end_time")


# Key columns: digit strings of any length, which SQLite's 64-bit integers cannot all hold.
_KEY_COLUMNS = {
    "organizers": ("organizer_key", "group_key"),
    "groups": ("group_key", "parent_key"),
    "sessions": ("session_id", "meeting_id", "organizer_key", "group_key"),
    "watermarks": ("organizer_key",),
    "notices_sent": ("session_id", "organizer_key"),
}


@MIGRATIONS()
def m008_keys_as_text(db: Database) -> None:
    """Store every key as TEXT: the tables are rebuilt with every row copied (an integer key
    becomes its digits), their indexes kept."""
    for table, columns in _KEY_COLUMNS.items():
        db.table(table).transform(types=dict.fromkeys(columns, str))


@MIGRATIONS()
def m009_timeliness(db: Database) -> None:
    """When each policy content was first loaded (the earliest a removal under it is due), and
    each run's overdue removals per policy (engine/timeliness.py; thinned after 30 days)."""
    db.table("policy_loads").create(
        {"content_hash": str, "policy": str, "first_loaded": str}, pk="content_hash"
    )
    db.table("overdue_points").create(
        {
            "run_id": str,
            "at": str,
            "policy": str,
            "overdue": int,
            "oldest_due_at": str,
            "reasons": str,
        },
        pk=("run_id", "policy"),
    )
    db.table("overdue_points").create_index(["policy", "at"])


@MIGRATIONS()
def m010_review_postponements(db: Database) -> None:
    """Removals approvers postponed in an approved decision: until when, why, by whom, and
    whether an approver lifted the postponement since."""
    _create(db, "postponements")
