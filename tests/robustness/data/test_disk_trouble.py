"""Disk trouble: a read-only or full state directory stops the run before any DELETE it
cannot record; every DELETE sent has a durable intent, and the message says what happened.

Tests run as root, which ignores file modes, so the trouble is made with mounts: a read-only
bind mount of the state directory, and a tmpfs of a few hundred KB for a full disk.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from retention.sandbox.policies import policy_set, rule

from .conftest import DELETE_OLDER_THAN_1D, Service

SANDBOX = ("--seed", "5", "--days", "90", "--sessions-per-day", "3")


def mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not permitted here: {result.stderr.strip()}")


@pytest.fixture
def mounts() -> Iterator[Callable[..., None]]:
    """`mounts(*args, target=PATH)`: mount, and unmount at teardown (latest first)."""
    targets: list[Path] = []

    def do(*args: str, target: Path) -> None:
        mount(*args, str(target))
        if target not in targets:  # a remount adds no mount of its own
            targets.append(target)

    yield do
    for target in reversed(targets):
        subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)


def intents_and_outcomes(deployed: Service) -> tuple[list[int], list[int]]:
    events = deployed.events()
    intents = [int(e["sessionId"]) for e in events if e["event"] == "intent"]
    outcomes = [int(e["intent"]) for e in events if e["event"] == "outcome"]
    return intents, outcomes


def deleted_sessions(deployed: Service, since: int = 0) -> list[int]:
    return [int(r["path"].split("/")[6]) for r in deployed.deletes(since)]


def test_read_only_state_directory_fails_clearly_and_sends_no_delete(
    service: Callable[..., Service], mounts: Callable[..., None]
) -> None:
    deployed = service(*SANDBOX)
    scanned = deployed.cli("plan")
    assert scanned.returncode == 0, scanned.stderr
    state = deployed.state_dir
    mounts("--bind", str(state), target=state)
    mounts("-o", "remount,ro,bind", str(state), target=state)
    for command in (("run", "--yes"), ("plan",), ("inventory",)):
        result = deployed.cli(*command)
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr
        assert "read-only" in result.stderr.lower(), result.stderr
    assert deployed.deletes() == []


NOTHING_DUE = policy_set(rule("sessions", 400))


@pytest.mark.e2e
def test_full_disk_stops_the_run_and_every_delete_sent_has_a_durable_intent(
    service: Callable[..., Service], mounts: Callable[..., None], tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounts("-t", "tmpfs", "-o", "size=16m", "tmpfs", target=disk)
    deployed = service(*SANDBOX, policies=NOTHING_DUE, RETENTION_STATE_DIR=str(disk / "state"))
    first = deployed.cli("run", "--yes")  # the inventory and the audit record exist
    assert first.returncode == 0, first.stderr
    (deployed.policy_dir / "policies.yaml").write_text(DELETE_OLDER_THAN_1D)
    deployed.server.control(latency_ms=100)  # the run lasts seconds, not a blink
    run = deployed.popen("run", "--yes")
    deadline = time.monotonic() + 120
    while len(deployed.deletes()) < 10 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    filler = disk / "filler"
    # Until the disk is full; the run's own writes may have filled it first.
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    _, stderr = run.communicate(timeout=240)
    assert run.returncode == 1, stderr
    assert "Traceback" not in stderr
    # The first write refused names the file, or the state directory when sqlite names none.
    assert "error: the audit record" in stderr or str(deployed.state_dir) in stderr, stderr
    assert "disk is full" in stderr or "disk I/O error" in stderr, stderr
    sent = deleted_sessions(deployed)
    deployed.server.control(latency_ms=0)
    assert len(sent) >= 10, "the disk filled before the run sent its DELETEs: nothing was tested"
    assert f"; {len(sent)} removal(s) had gone out before it" in stderr, stderr
    assert "nothing was removed" not in stderr, stderr

    filler.unlink(missing_ok=True)
    intents, _ = intents_and_outcomes(deployed)
    assert set(sent) <= set(intents), sorted(set(sent) - set(intents))
    verify = deployed.cli("audit", "verify")
    findings = [line for line in verify.stdout.splitlines() if line.startswith("FAIL")]
    assert all("[pending_intent]" in line for line in findings), verify.stdout

    recovered = deployed.cli("run", "--yes")
    assert recovered.returncode == 0, recovered.stderr
    intents, outcomes = intents_and_outcomes(deployed)
    assert len(outcomes) == len(set(outcomes)) == len(intents)
    left = deployed.cli("plan", "--format", "json")
    assert left.returncode == 0, left.stderr
    assert json.loads(left.stdout)["items"] == []
    verify = deployed.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout
