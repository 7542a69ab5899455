"""The single-instance lock between real processes: refusal names the holder, waiting works."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.errors import RuntimeFailure
from retention.service.lock import InstanceLocked, acquire

HOLDER = """
import sys
from pathlib import Path
from retention.service.lock import acquire
with acquire(Path(sys.argv[1]), wait=0, command="retention daemon"):
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
    with pytest.raises(InstanceLocked) as refused, acquire(tmp_path / "state", wait=0):
        pytest.fail("the lock was taken twice")
    assert f"pid {holder.pid} (retention daemon, since " in refused.value.message
    assert refused.value.holder.pid == holder.pid
    assert refused.value.exit_code == 1


@pytest.mark.e2e
def test_waiting_instance_takes_the_lock_once_the_holder_releases_it(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    readings = 0

    def monotonic() -> float:
        # The second reading comes after a first attempt found the lock held:
        # only then is the holder told to let go, so the wait is really exercised.
        nonlocal readings
        readings += 1
        if readings == 2:
            assert holder.stdin is not None
            holder.stdin.write("release\n")
            holder.stdin.flush()
        return time.monotonic()

    with acquire(tmp_path / "state", wait=60, monotonic=monotonic) as lock_path:
        record = json.loads(lock_path.read_text())
    assert readings >= 2
    assert record["pid"] == os.getpid()


@pytest.mark.e2e
def test_lock_of_a_killed_holder_is_free_at_once(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    started = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    with acquire(
        tmp_path / "state", wait=0, command="retention run", clock=lambda: started
    ) as path:
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


def blocked_on_a_lock(pid: int) -> bool:
    """Whether `pid` waits for a lock: /proc/locks lists waiters with a `->` mark."""
    return any(
        line.split()[1] == "->" and line.split()[5] == str(pid)
        for line in Path("/proc/locks").read_text().splitlines()
        if len(line.split()) > 5
    )


@pytest.mark.e2e
@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_waiting_without_a_limit_blocks_until_the_holder_exits(
    tmp_path: Path, holder: subprocess.Popen[str]
) -> None:
    waiter_code = (
        "import sys; from pathlib import Path; from retention.service.lock import acquire\n"
        "with acquire(Path(sys.argv[1]), wait=None, command='retention run'):\n"
        "    print('acquired', flush=True)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", waiter_code, str(tmp_path / "state")],
        stdout=subprocess.PIPE,
        text=True,
    ) as waiter:
        deadline = time.monotonic() + 30
        while not blocked_on_a_lock(waiter.pid):
            assert waiter.poll() is None, "the waiter stopped instead of waiting"
            assert time.monotonic() < deadline, "the waiter never blocked on the lock"
            time.sleep(0.02)
        assert holder.stdin is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        out, _ = waiter.communicate(timeout=30)
    assert out == "acquired\n"
    assert waiter.returncode == 0
