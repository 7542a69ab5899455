"""Two instances at once on one state directory: one runs, the other refuses; nothing twice."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable

import pytest

from .conftest import Service

pytestmark = pytest.mark.e2e

SANDBOX = ("--seed", "11", "--days", "120", "--sessions-per-day", "2", "--latency-ms", "5")


def run_two_at_once(deployed: Service) -> list[tuple[int, str]]:
    """Start `retention run --yes` twice at the same moment; their exit codes and stderr.

    The API hangs until one of them has exited: whichever took the lock first waits on its
    first call while holding it, so the other meets the lock however their start-ups differ.
    """
    deployed.server.control(hang=True)
    try:
        first, second = deployed.popen("run", "--yes"), deployed.popen("run", "--yes")
        deadline = time.monotonic() + 120
        while first.poll() is None and second.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        deployed.server.control(hang=False)
    finished = []
    for proc in (first, second):
        try:
            _, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        finished.append((proc.returncode, err))
    return finished


def check_one_ran_one_refused(deployed: Service, since: int) -> None:
    finished = run_two_at_once(deployed)
    codes = sorted(code for code, _ in finished)
    assert codes == [0, 1], finished
    refused = next(err for code, err in finished if code == 1)
    assert "is in use by pid" in refused
    assert "Traceback" not in refused
    paths = Counter(r["path"] for r in deployed.deletes(since))
    assert paths, "the run that won deleted nothing: the scenario tested nothing"
    assert max(paths.values()) == 1, [p for p, n in paths.items() if n > 1]


def check_audit_chain(deployed: Service, runs: int) -> None:
    verify = deployed.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    events = deployed.events()
    assert sum(e["event"] == "run_started" for e in events) == runs
    assert sum(e["event"] == "run_finished" for e in events) == runs
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_two_runs_started_at_once_one_runs_the_other_refuses_naming_the_holder(
    service: Callable[..., Service],
) -> None:
    deployed = service(*SANDBOX)
    check_one_ran_one_refused(deployed, 0)
    check_audit_chain(deployed, runs=1)
    again = deployed.cli("run", "--yes")
    assert again.returncode == 0, again.stderr
    check_audit_chain(deployed, runs=2)


@pytest.mark.torture
def test_many_pairs_of_runs_never_fork_the_audit_chain_or_delete_twice(
    service: Callable[..., Service],
) -> None:
    deployed = service(*SANDBOX, policies=DAILY_WAVES)
    for trial in range(10):
        wave = DAILY_WAVES.replace("AGE", str(110 - 10 * trial))
        (deployed.policy_dir / "policies.yaml").write_text(wave)
        check_one_ran_one_refused(deployed, len(deployed.server.requests()))
    check_audit_chain(deployed, runs=10)


DAILY_WAVES = """
policies:
  - name: wave
    description: Each trial removes the next ten days of sessions.
    action: delete_session
    after: AGEd
"""
