"""Fault storm: 5xx and dropped connections at a 30% rate, then 429 bursts of every kind.

Every item ends `deleted` or `failed` with its reason, every intent has exactly one outcome, the
client never sends more than its rate limit in any one-second window (the sandbox's receive
times), and a Retry-After is waited out before the next request.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from support import reaped

RATE = 40
BURST = 4
RETRY_AFTERS: list[int | str] = [0, 7, "date", "absent"]


def busiest_second(times: list[float]) -> int:
    """The most requests received in any window [t, t + 1 s) (a sliding window)."""
    ordered = sorted(times)
    most = 0
    first = 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def client_times(dep: Any, since: int = 0) -> list[float]:
    """Receive times of the requests the service sent (API and token endpoint)."""
    return [float(r["t"]) for r in dep.requests(since)]


def assert_every_item_settled(dep: Any) -> Counter[str]:
    events = dep.events()
    intents = {e["seq"] for e in events if e["event"] == "intent"}
    outcomes = [e for e in events if e["event"] == "outcome"]
    assert sorted(e["intent"] for e in outcomes) == sorted(intents), "one outcome per intent"
    kinds = Counter(e["outcome"] for e in outcomes)
    assert set(kinds) <= {"deleted", "already_absent", "failed"}, kinds
    assert all(e["reason"] for e in outcomes if e["outcome"] == "failed")
    return kinds


def storm(stage: Any, *, days: str, per_day: str) -> None:
    dep = stage(
        "--days",
        days,
        "--sessions-per-day",
        per_day,
        "--fault-rate",
        "0.3",
        "--rate-limit",
        str(RATE),
        env={"RETENTION_RATE_LIMIT": str(RATE), "RETENTION_CALL_DEADLINE": "60"},
    )
    dep.server.control(fault_rate=0)
    items = dep.plan()
    dep.server.control(fault_rate=0.3)
    mark = len(dep.requests())

    stormy = dep.cli("run", "--yes")

    assert stormy.returncode in (0, 1), stormy.stderr[-2000:]
    assert "Traceback" not in stormy.stderr
    kinds = assert_every_item_settled(dep)
    log = dep.requests(mark)
    faults = Counter(r.get("fault") for r in log if r.get("fault"))
    assert faults["dropped"] > 0, "connections were dropped"
    assert faults["500"] > 0, "5xx were served"
    assert busiest_second(client_times(dep, mark)) <= RATE
    assert not [r for r in log if r["status"] == 429], "the limiter kept under the server's limit"

    dep.server.control(fault_rate=0)
    calm = dep.cli("run", "--yes")
    assert calm.returncode == 0, calm.stderr[-2000:]
    state = dep.server.state()
    left = [item for item in items if int(item["sessionId"]) in set(state["session_ids"])]
    assert left == []
    verify = dep.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout
    print(
        f"\nFIGURES storm items={len(items)} requests={len(log)} faults={dict(faults)} "
        f"outcomes={dict(kinds)} busiest_second={busiest_second(client_times(dep, mark))}"
    )


@pytest.mark.torture  # wall-clock heavy: `make torture`
def test_a_30_percent_fault_storm_settles_every_item_under_the_rate_limit(stage: Any) -> None:
    storm(stage, days="45", per_day="3")


@pytest.mark.torture
def test_torture_fault_storm_over_a_1000_item_plan(stage: Any) -> None:
    storm(stage, days="130", per_day="10")


@pytest.mark.e2e
@pytest.mark.torture  # wall-clock heavy: `make torture`
def test_429_bursts_with_every_kind_of_retry_after_are_waited_out_and_lose_nothing(
    stage: Any,
) -> None:
    dep = stage(
        "--days",
        "60",
        "--sessions-per-day",
        "3",
        env={"RETENTION_RATE_LIMIT": str(RATE), "RETENTION_CALL_DEADLINE": "60"},
    )
    items = dep.plan()
    mark = len(dep.requests())
    proc = dep.popen("run", "--yes")
    with reaped(proc):
        for retry_after in RETRY_AFTERS:
            assert dep.wait_for_deletes(proc, 12, limit=60), "the run ended before the bursts"
            dep.server.control(burst_429=BURST, retry_after=retry_after)
        _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr[-2000:]

    kinds = assert_every_item_settled(dep)
    assert kinds == Counter(deleted=len(items))
    log = dep.requests(mark)
    too_many = [r for r in log if r["status"] == 429]
    assert len(too_many) == BURST * len(RETRY_AFTERS)
    assert busiest_second(client_times(dep, mark)) <= RATE
    # Retry-After: 7 — after the burst's calls already on their way, nothing for 7 s.
    seven = too_many[BURST : 2 * BURST]
    later = [r["t"] for r in log if r["t"] > seven[-1]["t"] + 0.5]
    assert later
    assert later[0] - seven[-1]["t"] >= 6.5
