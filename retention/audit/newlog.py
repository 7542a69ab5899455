"""`audit init --new-log`: the one way to a new record, naming the log it replaces and why."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlite_utils import Database

from retention.audit.checkpoint import Checkpoint, read_checkpoint_file
from retention.audit.head import database_file, last_head
from retention.audit.log import AuditLog, Head, SubjectMode
from retention.audit.store import AuditError, AuditInputError, connect_reader


@dataclass(frozen=True, slots=True)
class NewLog:
    """What `init --new-log` did: the new log, the one it follows, and what it moved aside."""

    log_id: str
    previous_log_id: str | None
    previous_head: Head | None
    moved: list[tuple[Path, Path]]
    checkpoint: Checkpoint


def start_new_log(
    audit_db: Path,
    checkpoint_path: Path,
    state: Database | None,
    *,
    reason: str,
    subject_mode: SubjectMode,
    signing_key: Ed25519PrivateKey | None,
    clock: Callable[[], datetime],
) -> NewLog:
    """Move the old record aside (if any), start a log whose first row names it, seal it."""
    if not reason.strip():
        raise AuditInputError("--reason must say why a new log is started")
    previous_id, previous_head = _previous(audit_db, checkpoint_path, state)
    moved: list[tuple[Path, Path]] = []
    if previous_id is not None:
        tag = previous_id
        if audit_db.exists():
            for suffix in ("", "-wal", "-shm"):
                source = Path(f"{audit_db}{suffix}")
                moved += _move(source, audit_db.with_name(f"{audit_db.stem}.{tag}.db{suffix}"))
        moved += _move(
            checkpoint_path, checkpoint_path.with_name(f"{checkpoint_path.stem}.{tag}.jsonl")
        )
    elif audit_db.exists():
        raise AuditError(f"{audit_db} exists but names no log id; move it away by hand first")
    with AuditLog.open(
        audit_db,
        subject_mode=subject_mode,
        signing_key=signing_key,
        checkpoint_path=checkpoint_path,
        clock=clock,
        state_db=database_file(state) if state is not None else None,
    ) as log:
        log.log_started(previous_log_id=previous_id, previous_head=previous_head, reason=reason)
        sealed = log.checkpoint(state=state)
        return NewLog(log.log_id, previous_id, previous_head, moved, sealed)


def _previous(
    audit_db: Path, checkpoint_path: Path, state: Database | None
) -> tuple[str | None, Head | None]:
    """The log being replaced and its last known head: from the file itself, else its traces."""
    if audit_db.exists():
        try:
            conn = connect_reader(audit_db)
            try:
                found = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
                last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
                row = last.fetchone()
            finally:
                conn.close()
        except (sqlite3.DatabaseError, AuditInputError):
            found, row = None, None
        if found is not None:
            return str(found[0]), Head(row[0], row[1]) if row else Head(0, "0" * 64)
    candidates: list[tuple[str, Head]] = []
    if checkpoint_path.exists():
        lines = read_checkpoint_file(checkpoint_path).checkpoints
        if lines:
            sealed = lines[-1][1]
            candidates.append((sealed.log_id, Head(sealed.rows, sealed.head)))
    written = last_head(state) if state is not None else None
    if written is not None:
        candidates.append((written.log_id, Head(written.rows, written.head)))
    if not candidates:
        return None, None
    log_id = candidates[-1][0] if written is not None else candidates[0][0]
    heads = [head for named, head in candidates if named == log_id]
    return log_id, max(heads, key=lambda head: head.rows)


def _move(source: Path, target: Path) -> list[tuple[Path, Path]]:
    if not source.exists():
        return []
    if target.exists():
        raise AuditError(f"cannot move {source} aside: {target} already exists")
    os.replace(source, target)
    return [(source, target)]
