"""Hung upstream: the API stops answering mid-run; every call ends at its deadline.

The run ends with `failed` outcomes naming the deadline and exits 1 with a clear message; no
intent is left without an outcome; once the API answers again the next run removes everything
planned. (The daemon's watchdog under a hung upstream is tested with the daemon.)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from support import reaped

pytestmark = pytest.mark.e2e

DEADLINE = {"RETENTION_CALL_DEADLINE": "2"}


def test_a_hung_api_mid_run_fails_calls_at_their_deadline_and_the_next_run_completes(
    stage: Any,
) -> None:
    dep = stage("--days", "60", "--sessions-per-day", "4", env=DEADLINE)
    items = dep.plan()
    proc = dep.popen("run", "--yes")
    with reaped(proc):
        assert dep.wait_for_deletes(proc, 20, limit=60), "the run ended before the hang"
        dep.server.control(hang=True)
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr[-2000:]
    assert "error: run " in stderr
    assert "circuit breaker" in stderr or "removals failed" in stderr
    assert "Traceback" not in stderr
    dep.server.control(hang=False)

    events = dep.events()
    intents = {e["seq"] for e in events if e["event"] == "intent"}
    outcomes = [e for e in events if e["event"] == "outcome"]
    assert sorted(e["intent"] for e in outcomes) == sorted(intents), "one outcome per intent"
    failed = [e for e in outcomes if e["outcome"] == "failed"]
    assert failed, "the calls the hang caught failed"
    assert all(e["reason"].endswith("no answer within the call's 2 s deadline") for e in failed)
    print(f"\nFIGURES hang outcomes={dict(Counter(e['outcome'] for e in outcomes))}")

    mark = len(dep.requests())
    finished = dep.cli("run", "--yes")
    assert finished.returncode == 0, finished.stderr[-2000:]
    # The hung DELETEs went through once released; their windows are read again rather than
    # the sessions sent a second, 404-answered DELETE that would count against the breaker.
    assert {entry["status"] for entry in dep.deletes(mark)} <= {204}
    state = dep.server.state()
    left = [item for item in items if int(item["sessionId"]) in set(state["session_ids"])]
    assert left == [], f"{len(left)} planned sessions still in the account"
    verify = dep.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout
