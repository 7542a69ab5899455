"""The head the service last sealed, kept in the state database to cross-check the record."""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("audit-head")
_TABLE = "audit_heads"


@MIGRATIONS()
def m001_audit_heads(db: Database) -> None:
    """One row per checkpoint the service wrote: the log, its row count and head hash."""
    db.table(_TABLE).create(
        {"id": int, "log_id": str, "rows": int, "head": str, "signed": int, "time": str},
        pk="id",
        not_null={"log_id", "rows", "head", "signed", "time"},
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
