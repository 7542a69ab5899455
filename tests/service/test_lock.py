"""The single-instance lock between real processes: refusal names the holder, waiting works."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.errors import RuntimeFailure
from retention.service.lock import InstanceLocked, acquire
from retention.service.statedir import LockWait, take_lock

HOLDER = """
import sys
from pathlib import Path
from retention.service.lock import acquire
with acquire(Path(sys.argv[1]), command="retention daemon"):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lock on tmp_path/state until a line arrives on its stdin."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "state")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "held\n"
    yield child
    if child.poll() is None:
        child.kill()
    child.wait(timeout=30)
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            stream.close()


@pytest.mark.e2e
def test_second_instance_is_refused_naming_the_holder_pid(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with pytest.raises(InstanceLocked) as refused, acquire(tmp_path / "state"):
        pytest.fail("the lock was taken twice")
    assert f"pid {holder.pid} (retention daemon, since " in refused.value.message
    assert refused.value.holder.pid == holder.pid
    assert refused.value.exit_code == 1


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.write("release\n")
    holder.stdin.flush()


@pytest.mark.e2e
@pytest.mark.anyio
async def test_waiting_instance_takes_the_lock_once_the_holder_releases_it(
    tmp_path: Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retention.service.statedir.LOCK_POLL_SECONDS", 0.01)
    told: list[InstanceLocked] = []

    def on_wait(exc: InstanceLocked) -> None:
        # Told after a first attempt found the lock held: only then is the holder told to
        # let go, so the wait is really exercised.
        told.append(exc)
        release(holder)

    wait = LockWait(60, on_wait=on_wait)
    with contextlib.ExitStack() as stack:
        lock_path = await take_lock(
            stack, tmp_path / "state", command="retention run", wait=wait, stop=asyncio.Event()
        )
        record = json.loads(lock_path.read_text())
    assert [exc.holder.pid for exc in told] == [holder.pid], "told once, naming the holder"
    assert record["pid"] == os.getpid()
    assert record["command"] == "retention run"


@pytest.mark.e2e
@pytest.mark.anyio
async def test_a_wait_that_runs_out_is_refused_naming_the_holder(
    tmp_path: Path, holder: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retention.service.statedir.LOCK_POLL_SECONDS", 0.01)
    with contextlib.ExitStack() as stack, pytest.raises(InstanceLocked) as refused:
        await take_lock(
            stack,
            tmp_path / "state",
            command="retention",
            wait=LockWait(0.05),
            stop=asyncio.Event(),
        )
    assert f"pid {holder.pid} (retention daemon, since " in refused.value.message


@pytest.mark.e2e
def test_lock_of_a_killed_holder_is_free_at_once(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    started = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    with acquire(tmp_path / "state", command="retention run", clock=lambda: started) as path:
        record = json.loads(path.read_text())
    assert record == {
        "pid": os.getpid(),
        "started_at": "2024-05-01T03:00:00+00:00",
        "command": "retention run",
    }


def test_release_leaves_no_holder_behind(tmp_path: Path) -> None:
    with acquire(tmp_path / "state") as lock_path:
        assert lock_path.read_text() != ""
    assert lock_path.read_text() == ""
    assert (lock_path.stat().st_mode & 0o777) == 0o600


def test_state_dir_that_cannot_be_created_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("")
    with pytest.raises(RuntimeFailure) as failed, acquire(tmp_path / "not-a-dir" / "state"):
        pytest.fail("a lock was taken in a directory that cannot exist")
    assert "not-a-dir/state/retention.lock" in failed.value.message
    assert failed.value.hint is not None
    assert "RETENTION_STATE_DIR" in failed.value.hint


WAITER = """
import asyncio, contextlib, sys
from pathlib import Path
from retention.service import statedir
statedir.LOCK_POLL_SECONDS = 0.01

async def main() -> None:
    wait = statedir.LockWait(None, on_wait=lambda exc: print("waiting", flush=True))
    with contextlib.ExitStack() as stack:
        await statedir.take_lock(
            stack, Path(sys.argv[1]), command="retention run", wait=wait, stop=asyncio.Event()
        )
        print("acquired", flush=True)

asyncio.run(main())
"""


@pytest.mark.e2e
def test_waiting_without_a_limit_waits_until_the_holder_lets_go(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", WAITER, str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
    ) as waiter:
        assert waiter.stdout is not None
        assert waiter.stdout.readline() == "waiting\n"
        assert waiter.poll() is None, "the waiter stopped instead of waiting"
        release(holder)
        out, _ = waiter.communicate(timeout=30)
    assert out == "acquired\n"
    assert waiter.returncode == 0
