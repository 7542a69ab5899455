"""The single-instance lock on the state directory: a manual run and the daemon never overlap.

An advisory `flock` on `state_dir/retention.lock`. The kernel drops it when its holder
exits, even by `kill -9`, so a crash never leaves a stale lock behind. The file holds the
holder's pid and start time so that whoever is refused can be told who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from retention.errors import RuntimeFailure

LOCK_FILE = "retention.lock"


@dataclass(frozen=True)
class LockHolder:
    """Who holds the lock, as written in the lock file."""

    pid: int | None
    started_at: str | None
    command: str | None

    def describe(self) -> str:
        """`pid 1234 (retention daemon, since 2024-05-01T03:00:00+00:00)` or what is known."""
        if self.pid is None:
            return "another process (its pid was not recorded yet)"
        details = ", ".join(
            part for part in (self.command, self.started_at and f"since {self.started_at}") if part
        )
        return f"pid {self.pid}" + (f" ({details})" if details else "")


class InstanceLocked(RuntimeFailure):
    """Another retention process holds the state directory.

    A run-time condition, not bad input (exit 2) nor a safety refusal of a plan (exit 3,
    which scripts read as "a cap or a changed plan"): exit 1, and the message names the
    holder so the operator can tell the daemon from a stuck manual run.
    """

    def __init__(self, lock_path: Path, holder: LockHolder) -> None:
        super().__init__(
            f"the state directory {lock_path.parent} is in use by {holder.describe()};"
            f" {lock_path} is locked",
            hint="wait for that run to finish, or stop the daemon (systemctl stop retention)",
        )
        self.lock_path = lock_path
        self.holder = holder


def read_holder(lock_path: Path) -> LockHolder:
    """The holder recorded in the lock file; fields are None when it is empty or unreadable."""
    try:
        record = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        record = {}
    if not isinstance(record, dict):
        record = {}
    pid = record.get("pid")
    return LockHolder(
        pid=pid if isinstance(pid, int) else None,
        started_at=str(record["started_at"]) if "started_at" in record else None,
        command=str(record["command"]) if "command" in record else None,
    )


def _open_lock_file(state_dir: Path) -> int:
    lock_path = state_dir / LOCK_FILE
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # No O_TRUNC: the file may name the current holder, read by those who are refused.
        return os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot open the lock file {lock_path}: {exc.strerror}",
            hint="check RETENTION_STATE_DIR and that this user may write there",
        ) from exc


def _record_holder(fd: int, command: str, now: datetime) -> None:
    record = {"pid": os.getpid(), "started_at": now.isoformat(), "command": command}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    os.fsync(fd)


@contextmanager
def acquire(
    state_dir: Path,
    *,
    command: str = "retention",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[Path]:
    """Hold the state directory's lock for the `with` block; yields the lock file's path.

    Never waits: raises InstanceLocked naming the holder when another process has it. Those
    who wait for it do so through `statedir.take_lock`, the one waiter.
    """
    lock_path = state_dir / LOCK_FILE
    fd = _open_lock_file(state_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InstanceLocked(lock_path, read_holder(lock_path)) from None
        _record_holder(fd, command, clock())
        try:
            yield lock_path
        finally:
            # Emptied before release, so nobody reads this pid as the holder later on.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
