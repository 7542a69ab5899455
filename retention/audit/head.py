"""The heads the service wrote, kept in the state database to cross-check the record.

Two kinds: the last checkpoint it sealed (`audit_heads`, one row per seal), and the written
head (`written_head`, one row): before each commit to the record, the head the record had when
the transaction began and the head it will have once it commits. The record must end at one of
the two (a crash between the state's commit and the record's is not a forgery): more rows were
not written by this service, fewer were lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("audit-head")
_TABLE = "audit_heads"
_WRITTEN = "written_head"


@MIGRATIONS()
def m001_audit_heads(db: Database) -> None:
    """One row per checkpoint the service wrote: the log, its row count and head hash."""
    db.table(_TABLE).create(
        {"id": int, "log_id": str, "rows": int, "head": str, "signed": int, "time": str},
        pk="id",
        not_null={"log_id", "rows", "head", "signed", "time"},
    )


@MIGRATIONS()
def m002_written_head(db: Database) -> None:
    """The head of the record before and after the service's last commit to it (one row)."""
    db.execute(
        f"CREATE TABLE {_WRITTEN} (id INTEGER PRIMARY KEY CHECK (id = 1), log_id TEXT NOT NULL,"
        " previous_rows INTEGER NOT NULL, previous_hash TEXT NOT NULL,"
        " rows INTEGER NOT NULL, hash TEXT NOT NULL)"
    )


@dataclass(frozen=True, slots=True)
class WrittenHead:
    """A checkpoint the service itself wrote: which log, how many rows, which head hash."""

    log_id: str
    rows: int
    head: str
    signed: bool = False


def record_head(db: Database, head: WrittenHead, *, time: str) -> None:
    """Remember a checkpoint just written (called after it is in the log and the file)."""
    MIGRATIONS.apply(db)
    with db.atomic():
        db.table(_TABLE).insert(
            {
                "log_id": head.log_id,
                "rows": head.rows,
                "head": head.head,
                "signed": int(head.signed),
                "time": time,
            }
        )


def last_head(db: Database) -> WrittenHead | None:
    """The last checkpoint the service wrote, or None if it never wrote one here."""
    if not db.table(_TABLE).exists():
        return None
    row = db.execute(
        f"SELECT log_id, rows, head, signed FROM {_TABLE} ORDER BY id DESC LIMIT 1"  # noqa: S608
    ).fetchone()
    if row is None:
        return None
    return WrittenHead(log_id=row[0], rows=row[1], head=row[2], signed=bool(row[3]))


@dataclass(frozen=True, slots=True)
class RowHead:
    """A place in a record: its row count and the hash of its last row."""

    rows: int
    hash: str

    def shown(self) -> str:
        return f"row {self.rows} ({self.hash[:16]}…)"


@dataclass(frozen=True, slots=True)
class HeadMark:
    """The written head: the record's head before the service's last commit, and after it."""

    log_id: str
    previous: RowHead
    intended: RowHead


@dataclass(frozen=True, slots=True)
class HeadMismatch:
    """How a record differs from the written head: `foreign_rows`, `lost_rows` or
    `replaced_log`, with a sentence and the rows concerned (first, last)."""

    finding: str
    message: str
    rows: tuple[int, int] | None = None


def database_file(db: Database) -> Path:
    """The file a state database was opened from."""
    row = db.execute("PRAGMA database_list").fetchone()
    return Path(str(row[2]))


def written_mark(db: Database) -> HeadMark | None:
    """The written head of this state directory, or None before the service first wrote."""
    try:
        row = db.execute(
            f"SELECT log_id, previous_rows, previous_hash, rows, hash FROM {_WRITTEN}"  # noqa: S608
            " WHERE id = 1"
        ).fetchone()
    except sqlite3.OperationalError:  # no such table: a state directory of an older version
        return None
    if row is None:
        return None
    return HeadMark(
        str(row[0]), RowHead(int(row[1]), str(row[2])), RowHead(int(row[3]), str(row[4]))
    )


def compare_written(
    mark: HeadMark, log_id: str, length: int, hash_at: Callable[[int], str | None]
) -> HeadMismatch | None:
    """None when the record (`log_id`, `length` rows, `hash_at(seq)`) ends where the service
    left it: at the head before its last commit or after it; else what differs."""
    if mark.log_id != log_id:
        return HeadMismatch(
            "replaced_log",
            f"the record is log {log_id}, but the service last wrote to log {mark.log_id}",
        )

    def holds(head: RowHead) -> bool:
        return head.rows == 0 or (length >= head.rows and hash_at(head.rows) == head.hash)

    previous, intended = mark.previous, mark.intended
    if any(length == head.rows and holds(head) for head in (intended, previous)):
        return None
    if length < previous.rows:
        return HeadMismatch(
            "lost_rows",
            f"the record ends at row {length}, before row {previous.rows} this service wrote",
            (length + 1, previous.rows),
        )
    agreed = intended if length > intended.rows and holds(intended) else previous
    first = agreed.rows + 1 if holds(agreed) else max(agreed.rows, 1)
    return HeadMismatch(
        "foreign_rows",
        f"rows {first}..{length} were not written by this service (it last wrote"
        f" {intended.shown()})",
        (first, length),
    )


class HeadKeeper:
    """Writes the written head to the state database before each commit to the record.

    Its own connection (the record is appended from a writer thread), committed with
    synchronous=FULL: the mark is durable before the record's commit is attempted.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = Database(conn)
        MIGRATIONS.apply(self._db)

    @classmethod
    def open(cls, state_db: Path) -> Self:
        state_db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(state_db, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return cls(conn)

    def close(self) -> None:
        self._db.conn.close()

    def mark(self) -> HeadMark | None:
        return written_mark(self._db)

    def check_start(
        self, log_id: str, length: int, hash_at: Callable[[int], str | None]
    ) -> HeadMismatch | None:
        """Before appending: the record still ends where this service left it.

        A fresh log (no rows) is one `audit init --new-log` starts: accepted.
        """
        mark = self.mark()
        if mark is None or length == 0:
            return None
        return compare_written(mark, log_id, length, hash_at)

    def intend(self, log_id: str, previous: RowHead, intended: RowHead) -> None:
        """Record, durably, the head the record is about to reach, and the one it leaves."""
        with self._db.atomic():
            self._db.execute(
                f"INSERT INTO {_WRITTEN} (id, log_id, previous_rows, previous_hash, rows, hash)"  # noqa: S608
                " VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " log_id = excluded.log_id, previous_rows = excluded.previous_rows,"
                " previous_hash = excluded.previous_hash, rows = excluded.rows,"
                " hash = excluded.hash",
                [log_id, previous.rows, previous.hash, intended.rows, intended.hash],
            )
