"""Known failures of the environment (a full disk, a damaged database) as one RetentionError.

Errors the service raises itself are RetentionError already. A few others come from the
environment rather than from a bug: the disk fills, a file cannot be written, a database file is
damaged. They become one message with a hint and exit 1; anything else is a bug and crashes.
Concurrent work reports failures as an ExceptionGroup: its first known failure is the one named.
When removals were cut short, that failure is named even if closing the run failed after it
(a full disk refuses `run_finished` too): its message counts the removals that went out.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from retention.errors import RemovalsInterrupted, RetentionError, RuntimeFailure

# OSError numbers that say the environment, not the program, is wrong.
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EIO: "an input/output error on the disk",
}
_FULL_HINT = (
    "free space in the state directory (RETENTION_STATE_DIR) and run again: the audit record"
    " keeps what went out, and the next run picks up from there"
)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exception itself, or every exception inside a (nested) exception group."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or while handling, nearest first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def known_failure(exc: BaseException, state_dir: Path | None) -> RetentionError | None:
    """The failure to report for `exc`, or None when it is not a known one (a bug)."""
    found = list(leaves(exc))
    for leaf in found:
        # The first failure after removals went out is the deepest: it counts what went out.
        interrupted = [c for c in causes(leaf) if isinstance(c, RemovalsInterrupted)]
        if interrupted:
            return _after_removals(interrupted[-1], state_dir)
    for leaf in found:
        if isinstance(leaf, RetentionError):
            return leaf
    for leaf in found:
        translated = _translate(leaf, state_dir)
        if translated is not None:
            return translated
    return None


def _after_removals(
    interrupted: RemovalsInterrupted, state_dir: Path | None
) -> RetentionError | None:
    """The failure named as it would be alone, with what the run had removed by then."""
    cause = known_failure(interrupted.cause, state_dir)
    if cause is None:
        return None
    return RuntimeFailure(
        f"{cause.message}; {interrupted.went_out}",
        hint=interrupted.hint,
        reason=cause.reason,
    )


def _translate(exc: BaseException, state_dir: Path | None) -> RetentionError | None:
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        what = ENVIRONMENT_ERRNOS[exc.errno]
        if exc.filename:
            where = f" writing {exc.filename}"
        else:
            where = f" writing in {state_dir}" if state_dir else ""
        hint = _FULL_HINT if exc.errno in (errno.ENOSPC, errno.EDQUOT) else _rights_hint()
        return RuntimeFailure(f"{what}{where} ({exc.strerror})", hint=hint)
    if isinstance(exc, sqlite3.OperationalError) and _is_full(str(exc)):
        where = f" in {state_dir}" if state_dir else ""
        return RuntimeFailure(f"the disk is full{where}: sqlite reports {exc}", hint=_FULL_HINT)
    if isinstance(exc, sqlite3.DatabaseError):
        return _damaged(exc, state_dir)
    if isinstance(exc, MemoryError):
        return RuntimeFailure(
            "out of memory", hint="raise the unit's MemoryMax= or lower RETENTION_CONCURRENCY"
        )
    return None


def _is_full(text: str) -> bool:
    return "database or disk is full" in text or "disk I/O error" in text


def _rights_hint() -> str:
    return "check that the service's user may write RETENTION_STATE_DIR and the files in it"


def _damaged(exc: sqlite3.DatabaseError, state_dir: Path | None) -> RuntimeFailure:
    """Name the database that fails an integrity check (the state one can be rebuilt)."""
    state_db = state_dir / "state.db" if state_dir else None
    audit_db = state_dir / "audit.db" if state_dir else None
    if audit_db is not None and _fails_check(audit_db):
        return RuntimeFailure(
            f"the audit record {audit_db} is damaged: {exc}",
            hint="restore it from a backup; `retention verify` checks the restored copy",
        )
    where = str(state_db) if state_db is not None else "in the state directory"
    return RuntimeFailure(
        f"the state database {where} is damaged: {exc}",
        hint="restore it or move it aside, the next run rescans",
    )


def _fails_check(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return True
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError:
        return True
    finally:
        conn.close()
    return rows != [("ok",)]
