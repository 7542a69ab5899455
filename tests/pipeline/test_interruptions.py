"""A run interrupted by SIGTERM or by a hold placed while it executes loses nothing."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

ONE_ORGANIZER = """
policies:
  - name: recordings-30d
    description: Recordings of one organizer go 30 days after the session ended.
    action: delete_recordings
    after: 30d
    scope: {organizers: [1001, 1002]}
    match: {has_recording: true}
"""
# A longer history than the fixture's: enough removals for one organizer to interrupt.
LONGER = ("--days", "150", "--sessions-per-day", "6")


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


@pytest.mark.e2e
def test_sigterm_finishes_calls_in_flight_records_their_outcomes_and_stops(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*LONGER, "--latency-ms", "300", policies=ONE_ORGANIZER)
    plan_file = tmp_path / "plan.json"
    dep.cli("plan", "--out", str(plan_file), check=True)
    items = json.loads(plan_file.read_text())["items"]
    assert len(items) >= 20
    proc = dep.popen("apply", str(plan_file), "--yes")
    wait_for(lambda: len(dep.deletes()) >= 5)

    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)

    assert proc.returncode == 1
    assert "stopped by signal" in stderr
    assert "Traceback" not in stderr
    sent = len(dep.deletes())
    assert sent < len(items)
    events = dep.events()
    intents = [e for e in events if e["event"] == "intent"]
    outcomes = [e for e in events if e["event"] == "outcome"]
    assert len(intents) == sent
    assert sorted(e["intent"] for e in outcomes) == sorted(e["seq"] for e in intents)
    assert dep.cli("audit", "verify").returncode == 0

    dep.cli("run", "--yes", check=True)
    remaining = set(dep.server.state()["recording_session_ids"])
    assert not remaining & {int(item["sessionId"]) for item in items}


def test_hold_placed_while_a_plan_executes_wins_over_the_plan(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*LONGER, policies=ONE_ORGANIZER)
    dep.env["RETENTION_CONCURRENCY"] = "1"
    plan_file = tmp_path / "plan.json"
    dep.cli("plan", "--out", str(plan_file), check=True)
    items = json.loads(plan_file.read_text())["items"]
    last = items[-1]
    # The folder is looked at again before each DELETE leaves (its files' modification state):
    # a hold written while the first DELETE is on the wire keeps the last item.
    hold = dep.policy_dir / "hold.yaml"

    def place_hold_at_the_first_delete(method: str, _path: str) -> None:
        if method == "DELETE" and not hold.exists():  # before the sandbox answers it
            hold.write_text(
                "holds:\n"
                "  - id: LATE-HOLD\n"
                "    reason: Placed while the plan was executing.\n"
                f"    sessions: [{last['sessionId']}]\n"
            )

    dep.server.on_request.append(place_hold_at_the_first_delete)
    result = dep.cli("apply", str(plan_file), "--yes")

    assert result.returncode == 0, result.stderr
    assert len(items) >= 10, "the plan sends many DELETEs after the one the hold came during"
    assert hold.exists(), "the hold came while the plan was executing"
    held = [e for e in dep.events() if e["event"] == "outcome" and e["outcome"] == "skipped_hold"]
    assert [(int(e["sessionId"]), e["reason"]) for e in held] == [
        (int(last["sessionId"]), "held by hold:LATE-HOLD")
    ]
    deleted_paths = {r["path"] for r in dep.deletes()}
    assert not any(f"/sessions/{last['sessionId']}/" in path for path in deleted_paths)
    assert int(last["sessionId"]) in dep.server.state()["recording_session_ids"]


@pytest.mark.e2e
def test_hold_placed_after_a_crash_wins_over_the_intent_it_left_pending(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*LONGER, policies=ONE_ORGANIZER)
    plan_file = tmp_path / "plan.json"
    dep.cli("plan", "--out", str(plan_file), check=True)
    first = json.loads(plan_file.read_text())["items"][0]
    dep.env["RETENTION_CONCURRENCY"] = "1"
    # Killed with the first intent durable and its hold check not yet made.
    crashed = dep.cli(
        "apply",
        str(plan_file),
        "--yes",
        extra_env={"RETENTION_FAILPOINTS": "after_intent=1"},
        process=True,
    )
    assert crashed.returncode == -signal.SIGKILL
    assert not dep.deletes()
    (dep.policy_dir / "hold.yaml").write_text(
        "holds:\n"
        "  - id: HOLD-AFTER-CRASH\n"
        "    reason: Placed while the service was down.\n"
        f"    sessions: [{first['sessionId']}]\n"
    )

    dep.cli("run", "--yes", check=True)

    held = [e for e in dep.events() if e["event"] == "outcome" and e["outcome"] == "skipped_hold"]
    assert [(int(e["sessionId"]), e["reason"]) for e in held] == [
        (int(first["sessionId"]), "held by hold:HOLD-AFTER-CRASH")
    ]
    assert not any(f"/sessions/{first['sessionId']}/" in r["path"] for r in dep.deletes())
    assert int(first["sessionId"]) in dep.server.state()["recording_session_ids"]
    assert dep.cli("audit", "verify").returncode == 0
