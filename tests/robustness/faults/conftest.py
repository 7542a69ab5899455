"""Fixtures for the fault scenarios: deployments against a sandbox, and the recovery checks.

`stage(*sandbox_args, policies=NAME, env=…)` starts a sandbox (a real subprocess on loopback) and
points a state directory of its own at it; a test may stage several. `Stage.assert_recovered` is
the crash-recovery contract of issue 8, checked against the sandbox's own state and request log and
against the audit record read back through the CLI.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Deployment, deploy

from retention.sandbox.policies import policy_set, rule

SANDBOX_NOW = "2026-11-23T00:00:00Z"

# Whole sessions go after 30 days: one DELETE per planned item, and "removed" is plain to see.
SESSIONS_30D = policy_set(rule("sessions", 30))

# All three actions, so that crashes land on attendee-list and recording deletes too.
MIXED = policy_set(rule("recordings", 20), rule("attendees", 40), rule("sessions", 60))

POLICY_SETS = {"sessions-30d": SESSIONS_30D, "mixed": MIXED}

_DELETE_PATH = re.compile(r"/organizers/(\d+)/sessions/(\d+)(/attendees|/recordings)?$")
_ACTION_OF_SUFFIX = {
    None: "delete_session",
    "/attendees": "delete_attendees",
    "/recordings": "delete_recordings",
}


@dataclass
class Recovery:
    """What the checks counted, for the figures in the report."""

    items: int
    intents: int
    outcomes: Counter[str]
    max_deletes_per_item: int
    resent: int


class Stage(Deployment):
    """A deployment with the checks of the crash and fault scenarios."""

    def plan(self) -> list[dict[str, Any]]:
        """The items of a plan file made now (a dry run: it sends no DELETE)."""
        out = self.root / "plan.json"
        done = self.cli("plan", "--format", "csv", "--out", str(out))
        assert done.returncode == 0, done.stderr
        items: list[dict[str, Any]] = json.loads(out.read_text())["items"]
        return items

    def wait_for_deletes(self, proc: subprocess.Popen[str], count: int, limit: float) -> bool:
        """Wait until `count` more DELETEs reach the sandbox; False if `proc` ended first."""
        mark = len(self.requests())
        seen = 0
        stop_at = time.monotonic() + limit
        while time.monotonic() < stop_at and proc.poll() is None and seen < count:
            fresh = self.requests(mark)
            mark += len(fresh)
            seen += sum(1 for entry in fresh if entry["method"] == "DELETE")
            time.sleep(0.01)
        return proc.poll() is None

    def kill_when(self, proc: subprocess.Popen[str], deletes_seen: int, limit: float) -> bool:
        """SIGKILL `proc` after `deletes_seen` more DELETEs reach the sandbox; False if it ended."""
        if not self.wait_for_deletes(proc, deletes_seen, limit):
            return False
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True

    def deletes_per_item(self) -> Counter[tuple[int, str]]:
        """How many DELETEs the sandbox received for each (sessionId, action)."""
        return Counter(delete_target(entry) for entry in self.deletes())

    def assert_recovered(self, planned: Iterable[dict[str, Any]]) -> Recovery:
        """Issue 8's contract after crashes and a final clean run.

        Every planned item is gone from the account, every intent has exactly one outcome and
        none failed, no item saw more than two DELETEs, and `audit verify` passes.
        """
        planned = list(planned)
        state = self.server.state()
        left = [
            (int(item["sessionId"]), item["action"])
            for item in planned
            if still_present(state, int(item["sessionId"]), item["action"])
        ]
        assert left == [], f"{len(left)} planned removals still in the account: {left[:5]}"

        events = self.events()
        intents = {e["seq"]: e for e in events if e["event"] == "intent"}
        outcomes_per_intent = Counter(e["intent"] for e in events if e["event"] == "outcome")
        assert set(outcomes_per_intent) == set(intents), "an intent has no outcome"
        assert max(outcomes_per_intent.values(), default=1) == 1, "an intent has two outcomes"
        outcomes = Counter(e["outcome"] for e in events if e["event"] == "outcome")
        assert set(outcomes) <= {"deleted", "already_absent"}, outcomes
        planned_keys = {(int(item["sessionId"]), item["action"]) for item in planned}
        intended = {(int(e["sessionId"]), e["action"]) for e in intents.values()}
        assert planned_keys <= intended, "a planned item was never intended"

        per_item = self.deletes_per_item()
        assert max(per_item.values(), default=0) <= 2, per_item.most_common(3)

        verify = self.cli("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        return Recovery(
            items=len(planned),
            intents=len(intents),
            outcomes=outcomes,
            max_deletes_per_item=max(per_item.values(), default=0),
            resent=sum(1 for count in per_item.values() if count == 2),
        )


def delete_target(entry: dict[str, Any]) -> tuple[int, str]:
    """(sessionId, action) of a DELETE in the sandbox's request log."""
    match = _DELETE_PATH.search(entry["path"])
    assert match is not None, entry["path"]
    return int(match[2]), _ACTION_OF_SUFFIX[match[3]]


def still_present(state: dict[str, Any], session_id: int, action: str) -> bool:
    """Whether what `action` removes is still in the sandbox's account."""
    key = {
        "delete_session": "session_ids",
        "delete_recordings": "recording_session_ids",
        "delete_attendees": "attendee_session_ids",
    }[action]
    return session_id in set(state[key])


@pytest.fixture
def stage(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Stage]:
    """Factory: `stage(*sandbox_args, policies="mixed", env={...})`, each in its own folder."""
    made: list[Stage] = []

    def build(
        *args: str, policies: str = "sessions-30d", env: dict[str, str] | None = None
    ) -> Stage:
        server = sandbox("--now", SANDBOX_NOW, "--organizers", "12", "--groups", "2", *args)
        root = tmp_path / f"stage-{len(made)}"
        made.append(deploy(server, root, POLICY_SETS[policies], Stage, **(env or {})))
        return made[-1]

    return build
