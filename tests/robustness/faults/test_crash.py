"""Crash anywhere: failpoints and external `kill -9` during apply and recovery lose nothing.

After the crashes, `retention run --yes` reconciles and finishes: every planned item is removed,
every intent has exactly one outcome, no item saw more than two DELETEs, `audit verify` passes.
The default run crashes at every failpoint on a small plan; `make torture` runs many random
trials over a 1,000-item plan.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

FAILPOINTS = "RETENTION_FAILPOINTS"
POINTS = ("after_intent", "before_send", "after_send", "after_response")
KILLED = -9


def plan_file(stage: Any) -> str:
    return str(stage.root / "plan.json")


def finish(stage: Any) -> None:
    final = stage.cli("run", "--yes")
    assert final.returncode == 0, final.stderr[-2000:]


@pytest.mark.e2e
def test_a_crash_at_each_failpoint_in_turn_even_during_recovery_loses_and_repeats_nothing(
    stage: Any,
) -> None:
    dep = stage("--days", "60", "--sessions-per-day", "4", policies="mixed")
    items = dep.plan()
    assert len(items) > 40

    crashed = dep.cli(
        "apply", plan_file(dep), "--yes", extra_env={FAILPOINTS: f"{POINTS[0]}=30"}, process=True
    )
    assert crashed.returncode == KILLED, crashed.stderr[-2000:]
    # Each next run reconciles the intents the last crash left in flight first: the third hit
    # of its failpoint falls in there or just after, so recovery itself is crashed too.
    for point in POINTS[1:]:
        again = dep.cli("run", "--yes", extra_env={FAILPOINTS: f"{point}=3"}, process=True)
        assert again.returncode == KILLED, (point, again.stderr[-2000:])
    finish(dep)

    recovery = dep.assert_recovered(items)
    assert recovery.intents >= len(items)


def kill_at_random_moments(
    dep: Any, rng: random.Random, *, items: int, kills: int, limit: float
) -> int:
    """`apply`, then `run --yes` for each further kill, each SIGKILLed after a random number
    of DELETEs; returns how many of them were killed (a run may finish first)."""
    killed = 0
    for attempt in range(kills):
        args = ("apply", plan_file(dep), "--yes") if attempt == 0 else ("run", "--yes")
        proc = dep.popen(*args)
        try:
            killed += dep.kill_when(proc, rng.randint(1, max(1, items // 2)), limit)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            assert proc.stderr is not None
            proc.stderr.close()
    return killed


@pytest.mark.e2e
@pytest.mark.torture  # wall-clock heavy: `make torture`
def test_kill_9_at_random_moments_during_apply_and_recovery_then_run_finishes_the_plan(
    stage: Any,
) -> None:
    dep = stage("--days", "50", "--sessions-per-day", "4")
    items = dep.plan()
    killed = kill_at_random_moments(dep, random.Random(8), items=len(items), kills=2, limit=60)
    assert killed >= 1
    finish(dep)
    dep.assert_recovered(items)


@pytest.mark.e2e
@pytest.mark.torture
@pytest.mark.parametrize("trial", range(12))
def test_torture_kill_9_and_failpoints_over_a_1000_item_plan_lose_nothing(
    stage: Any, trial: int
) -> None:
    rng = random.Random(1000 + trial)
    dep = stage("--days", "130", "--sessions-per-day", "10", "--seed", str(trial + 1))
    dep.env["RETENTION_RATE_LIMIT"] = "200"
    items = dep.plan()
    assert len(items) >= 1000
    if trial % 2:
        killed = kill_at_random_moments(dep, rng, items=len(items), kills=3, limit=120)
    else:
        killed = 0
        for attempt in range(3):
            point = rng.choice(POINTS)
            hit = rng.randint(1, len(items) // 3)
            args = ("apply", plan_file(dep), "--yes") if attempt == 0 else ("run", "--yes")
            done = dep.cli(*args, extra_env={FAILPOINTS: f"{point}={hit}"}, process=True)
            killed += done.returncode == KILLED
    finish(dep)
    recovery = dep.assert_recovered(items)
    print(
        f"\nFIGURES crash trial={trial} items={recovery.items} crashes={killed} "
        f"intents={recovery.intents} outcomes={dict(recovery.outcomes)} "
        f"max_deletes_per_item={recovery.max_deletes_per_item} resent={recovery.resent}"
    )


@pytest.mark.e2e
def test_a_restart_while_the_api_fails_sends_nothing_new_until_it_can_reconcile(
    stage: Any,
) -> None:
    dep = stage("--days", "50", "--sessions-per-day", "4")
    items = dep.plan()
    crashed = dep.cli(
        "apply", plan_file(dep), "--yes", extra_env={FAILPOINTS: "after_intent=20"}, process=True
    )
    assert crashed.returncode == KILLED, crashed.stderr[-2000:]
    dep.server.control(fault_rate=1.0)
    mark = len(dep.requests())

    refused = dep.cli("run", "--yes", extra_env={"RETENTION_CALL_DEADLINE": "2"})

    assert refused.returncode == 1, refused.stderr[-2000:]
    assert "pending intent(s) could not be reconciled" in refused.stderr
    # The organizer listing they are decided again on is read first: nothing is read after it.
    assert "could not be read" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert dep.deletes(mark) == []
    dep.server.control(fault_rate=0)
    finish(dep)
    dep.assert_recovered(items)
