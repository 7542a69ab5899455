"""Load, reduced for the default run: inventory, plan and apply through the real CLI against a
generated account remove exactly the sessions due, once each, under 300 MB per process.

The full size (5,000 organizers, 2,000,000 sessions, 50,000 removals) is `make bench`
(bench/bench_load.py); this runs the same script on a small account.
"""

from __future__ import annotations

import json
import os

import pytest
from support import run_module

SIZE = {
    "ORGANIZERS": "20",
    "GROUPS": "2",
    "SESSIONS": "2000",
    "DAYS": "60",
    "REMOVALS": "200",
    "RATE": "1000",
}


@pytest.mark.torture  # wall-clock heavy: `make torture`
def test_reduced_load_removes_exactly_the_sessions_due_once_each_under_300_mb() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RETENTION_", "BENCH_"))}
    env.update({f"BENCH_LOAD_{name}": value for name, value in SIZE.items()})
    result = run_module("bench", "bench_load", env=env, timeout=280)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert [step["exit"] for step in figures["steps"]] == [0, 0, 0, 0], result.stderr[-3000:]
    assert figures["expected_removals"] == int(SIZE["REMOVALS"])
    assert figures["deleted"] == int(SIZE["REMOVALS"])
    assert figures["missing"] == figures["unexpected"] == 0
    assert figures["sent_twice"] == figures["still_there"] == 0
    assert figures["sessions_left"] == figures["sessions"] - int(SIZE["REMOVALS"])
    assert max(step["peak_rss_mb"] for step in figures["steps"]) < 300
    assert result.returncode == 0, result.stderr[-3000:]
