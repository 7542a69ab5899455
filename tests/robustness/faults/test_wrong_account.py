"""Wrong account: every DELETE answers 403 or 404, and the circuit breaker stops the run.

The breaker trips once `RETENTION_BREAKER_MIN_CALLS` removals were answered, all of them bad;
only the calls already in flight (at most `RETENTION_CONCURRENCY`) are answered after it. The
run exits 1 naming the breaker, every intent it wrote has its outcome, and once the account is
right again the next run removes everything planned.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

MIN_CALLS = 6
CONCURRENCY = 4
BREAKER = {
    "RETENTION_BREAKER_WINDOW": "20",
    "RETENTION_BREAKER_THRESHOLD": "0.5",
    "RETENTION_BREAKER_MIN_CALLS": str(MIN_CALLS),
    "RETENTION_CONCURRENCY": str(CONCURRENCY),
}
OUTCOME_OF = {403: "failed", 404: "already_absent"}


@pytest.mark.parametrize("status", [403, 404])
def test_every_delete_refused_trips_the_breaker_within_its_threshold(
    stage: Any, status: int
) -> None:
    dep = stage("--days", "60", "--sessions-per-day", "4", env=BREAKER)
    items = dep.plan()
    assert len(items) > 3 * (MIN_CALLS + CONCURRENCY)
    dep.server.control(delete_status=status)

    halted = dep.cli("run", "--yes")

    assert halted.returncode == 1, halted.stderr[-2000:]
    assert "ended halted: circuit breaker:" in halted.stderr
    assert "Traceback" not in halted.stderr
    sent = dep.deletes()
    assert MIN_CALLS <= len(sent) <= MIN_CALLS + CONCURRENCY
    assert {entry["status"] for entry in sent} == {status}
    events = dep.events()
    intents = [e for e in events if e["event"] == "intent"]
    outcomes = [e for e in events if e["event"] == "outcome"]
    assert len(intents) == len(outcomes) == len(sent)
    assert Counter(e["outcome"] for e in outcomes) == Counter({OUTCOME_OF[status]: len(sent)})
    assert all(e["reason"] for e in outcomes), "each outcome says why"

    dep.server.control(delete_status=None)
    mark = len(dep.requests())
    fixed = dep.cli("run", "--yes")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    state = dep.server.state()
    left = [item for item in items if int(item["sessionId"]) in set(state["session_ids"])]
    assert left == [], f"{len(left)} planned sessions still in the account"
    # A 404 is not taken as proof of absence: those sessions are read again and removed now.
    assert len(dep.deletes(mark)) == len(items)
