"""The one opening of the state directory, in two modes.

- `locked`: for anything that writes. The lock (waited for without blocking the event loop,
  as `LockWait` says), then the state database, migrated. A run session, `plan`, `inventory`
  and `notify preview` open it so.
- `read_only`: for what only reads (`explain`, `plans`, `inventory --list`, the console), while
  a run may hold the lock: a WAL reader of the last complete inventory, never migrated here
  (a database an older version wrote is migrated once under the lock, then read).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlite_utils import Database

from retention.engine.inventory import from_text
from retention.engine.state import MIGRATIONS, open_state_db
from retention.errors import InvalidInput, RuntimeFailure
from retention.service.lock import InstanceLocked, acquire
from retention.settings import Settings

# InstanceLocked is part of this opener's answer: readers of it catch it from here.
__all__ = [
    "InstanceLocked",
    "LockWait",
    "RunStopped",
    "last_scan_time",
    "locked",
    "read_only",
    "reader",
    "take_lock",
]

LOCK_POLL_SECONDS = 1.0
NO_INVENTORY_HINT = "run `retention inventory` (it reads the API) to make one"


class RunStopped(RuntimeFailure):
    """A stop (SIGTERM or the run's deadline) came before the run could do its work."""


@dataclass(frozen=True)
class LockWait:
    """How long to wait for the state directory: 0 refuses at once, None until stopped."""

    seconds: float | None = 0
    on_wait: Callable[[InstanceLocked], None] | None = None


async def take_lock(
    stack: contextlib.ExitStack,
    state_dir: Path,
    *,
    command: str,
    wait: LockWait,
    stop: asyncio.Event,
) -> Path:
    """Hold the lock for the stack's life: the one waiter, polling without blocking the loop
    while another process has it, for as long as `wait` says or until `stop` is set.

    Raises InstanceLocked naming the holder when the wait runs out, RunStopped when a stop
    comes first; `wait.on_wait` is told once, the first time the lock is found held.
    """
    loop = asyncio.get_running_loop()
    deadline = None if wait.seconds is None else loop.time() + wait.seconds
    told = False
    while True:
        try:
            return stack.enter_context(acquire(state_dir, command=command))
        except InstanceLocked as exc:
            if deadline is not None and loop.time() >= deadline:
                raise
            if stop.is_set():
                raise RunStopped(
                    f"stopped while waiting for the state directory ({exc.holder.describe()})",
                    hint="nothing was done; the next run starts afresh",
                ) from None
            if not told and wait.on_wait is not None:
                wait.on_wait(exc)
            told = True
        await asyncio.sleep(LOCK_POLL_SECONDS)


@contextlib.asynccontextmanager
async def locked(
    settings: Settings,
    *,
    command: str,
    wait: LockWait | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[Database]:
    """The state database under the state directory's lock, for the `async with` block.

    Raises InstanceLocked naming the holder when the wait runs out, RunStopped when a stop
    comes first.
    """
    with contextlib.ExitStack() as stack:
        await take_lock(
            stack,
            settings.state_dir,
            command=command,
            wait=wait or LockWait(),
            stop=stop or asyncio.Event(),
        )
        db = open_state_db(settings.state_db)
        try:
            yield db
        finally:
            db.close()


@contextlib.contextmanager
def read_only(settings: Settings, use: str) -> Iterator[Database]:
    """The last complete inventory, read without the lock; else invalid input naming `use`
    ("explain from"). Never an empty database read as "nothing is due"."""
    with inventory_if_any(settings, use) as db:
        if db is None:
            raise InvalidInput(
                f"no inventory to {use}: no scan of {settings.state_db} has completed",
                hint=NO_INVENTORY_HINT,
            )
        yield db


@contextlib.contextmanager
def inventory_if_any(
    settings: Settings, use: str, *, complete: bool = True
) -> Iterator[Database | None]:
    """The last complete inventory, read without the lock, or None when there is none yet;
    with `complete` false, whatever the state database holds (names listed by a scan that has
    not finished, say)."""
    path = settings.state_db
    if not path.is_file():
        yield None
        return
    if MIGRATIONS.pending(reader(path)):
        # Written by an older version: migrated once, under the lock, then read.
        with acquire(settings.state_dir, command=f"retention ({use})"):
            open_state_db(path).close()
    db = reader(path)
    try:
        yield None if complete and last_scan_time(db) is None else db
    finally:
        db.close()


def reader(path: Path) -> Database:
    """A read-only connection to the state database (WAL: it reads while a run writes)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    conn.execute("PRAGMA busy_timeout=10000")
    return Database(conn)


def last_scan_time(db: Database) -> datetime | None:
    """When the last complete scan finished; None when no scan ever completed."""
    row = next(
        db.query(
            "SELECT finished_at FROM scans WHERE complete = 1 AND finished_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT 1"
        ),
        None,
    )
    return None if row is None else from_text(str(row["finished_at"]))
