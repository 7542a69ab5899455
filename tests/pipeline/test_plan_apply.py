"""plan → apply → verify against the sandbox: the account ends exactly as the plan says."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from support import Deployment

from retention.sandbox.policies import policy_set, rule


def expected_after(before: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, set[int]]:
    """The sandbox's id lists after the plan's items, worked out from the plan alone."""
    sessions = set(before["session_ids"])
    recordings = set(before["recording_session_ids"])
    attendees = set(before["attendee_session_ids"])
    for item in items:
        session_id = int(item["sessionId"])
        if item["action"] == "delete_session":
            sessions.discard(session_id)
            recordings.discard(session_id)
            attendees.discard(session_id)
        elif item["action"] == "delete_recordings":
            recordings.discard(session_id)
        elif item["action"] == "delete_attendees":
            attendees.discard(session_id)
    return {
        "session_ids": sessions,
        "recording_session_ids": recordings,
        "attendee_session_ids": attendees,
    }


def id_sets(state: dict[str, Any]) -> dict[str, set[int]]:
    return {
        key: set(state[key])
        for key in ("session_ids", "recording_session_ids", "attendee_session_ids")
    }


def assert_refused(
    dep: Deployment, result: CompletedProcess[str], code: int, *said: str, since: int = 0
) -> None:
    """The command exited `code` saying each of `said`, and sent no DELETE (from `since` on)."""
    assert result.returncode == code
    for message in said:
        assert message in result.stderr
    assert dep.deletes(since) == []


def test_apply_leaves_the_account_exactly_as_the_plan_says(deployment: Any, tmp_path: Path) -> None:
    dep = deployment()
    before = dep.server.state()
    plan_file = tmp_path / "plan.json"
    printed = dep.cli("plan", "--format", "json", "--out", str(plan_file), check=True)
    plan = json.loads(plan_file.read_text())
    assert json.loads(printed.stdout) == plan
    actions = Counter(item["action"] for item in plan["items"])
    assert actions["delete_session"] > 0
    assert actions["delete_recordings"] > 0
    assert actions["delete_attendees"] > 0
    assert dep.deletes() == [], "plan is a dry run: it sends no DELETE"

    dep.cli("apply", str(plan_file), "--yes", check=True)

    assert id_sets(dep.server.state()) == expected_after(before, plan["items"])
    events = dep.events()
    intents = [e for e in events if e["event"] == "intent"]
    outcomes = [e for e in events if e["event"] == "outcome"]
    planned = sorted((int(i["sessionId"]), i["action"]) for i in plan["items"])
    assert sorted((int(e["sessionId"]), e["action"]) for e in intents) == planned
    assert sorted(e["intent"] for e in outcomes) == sorted(e["seq"] for e in intents)
    assert {e["outcome"] for e in outcomes} == {"deleted"}
    assert [e["event"] for e in events if e["event"] == "plan_approved"] == ["plan_approved"]
    assert len(dep.deletes()) == len(plan["items"])
    verify = dep.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout

    mark = len(dep.server.requests())
    dep.cli("run", "--yes", check=True)
    assert dep.deletes(mark) == [], "a second run finds nothing left to remove"


def test_apply_refuses_an_altered_plan_with_exit_3_and_records_it(deployment: Any) -> None:
    dep = deployment()
    plan_file = dep.saved_plan()
    plan = json.loads(plan_file.read_text())
    plan["items"] = plan["items"][:1]
    plan_file.write_text(json.dumps(plan))

    result = dep.cli("apply", str(plan_file), "--yes")

    assert_refused(dep, result, 3, "the plan file was altered")
    assert "Traceback" not in result.stderr
    events = dep.events()
    refused = [e for e in events if e["event"] == "refused"]
    assert len(refused) == 1
    assert refused[0]["reason"] == "changed_plan"
    assert [e["event"] for e in events if e["run"] == refused[0]["run"]][-1] == "run_finished"


def test_apply_refuses_a_plan_whose_policies_changed(deployment: Any) -> None:
    dep = deployment()
    plan_file = dep.saved_plan()
    policy_file = dep.policy_dir / "policies.yaml"
    policy_file.write_text(policy_file.read_text().replace("after: 30d", "after: 20d"))

    result = dep.cli("apply", str(plan_file), "--yes")

    assert_refused(dep, result, 3, "the policies changed since the plan was made: recordings-30d")


def test_apply_refuses_a_plan_applied_before(deployment: Any) -> None:
    dep = deployment()
    plan_file = dep.saved_plan()
    dep.cli("apply", str(plan_file), "--yes", check=True)
    mark = len(dep.server.requests())

    result = dep.cli("apply", str(plan_file), "--yes")

    assert_refused(dep, result, 3, "already applied", since=mark)
    refused = [e for e in dep.events() if e["event"] == "refused"]
    assert [e["reason"] for e in refused] == ["applied_before"]


def test_run_over_a_cap_is_refused_whole_before_any_delete(deployment: Any) -> None:
    capped = rule(
        "recordings",
        30,
        description="Recordings go after 30 days, at most 5 per run.",
        match=None,
        limits="{max_deletions: 5}",
    )
    dep = deployment(policies=policy_set(capped))

    result = dep.cli("run", "--yes")

    assert_refused(
        dep, result, 3, "policy recordings-30d would make", "over its max_deletions of 5"
    )
    refused = [e for e in dep.events() if e["event"] == "refused"]
    assert [e["reason"] for e in refused] == ["cap"]


def test_apply_without_yes_and_without_a_terminal_removes_nothing(deployment: Any) -> None:
    dep = deployment()
    plan_file = dep.saved_plan()

    result = dep.cli("apply", str(plan_file), stdin=None)

    assert_refused(dep, result, 2, "without confirmation")


def test_plan_csv_has_one_removal_row_per_item(deployment: Any) -> None:
    dep = deployment()
    plan_file = dep.saved_plan()
    csv_out = dep.cli("plan", "--format", "csv", check=True).stdout.splitlines()
    assert csv_out[0].startswith("kind,organizerKey,organizer_email,group,subject,meetingId")
    removals = [line for line in csv_out[1:] if line.startswith("removal,")]
    assert len(removals) == len(json.loads(plan_file.read_text())["items"])
