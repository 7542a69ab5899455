"""Names that match nothing, at run time: a hold's unknown name stops the run, a policy's refuses
only that policy; `plan` and `run --yes` exit 3 and name it, a `refused` event records it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import DELETE_OLDER_THAN_1D, Service

SANDBOX = ("--seed", "5", "--days", "60", "--sessions-per-day", "3")
UNKNOWN = {
    "group": ("groups", "Finanse"),
    "organizer": ("organizers", "nobody@example.invalid"),
}
POLICY_ON_A_MISSPELT_GROUP = """
policies:
  - name: finance-sessions
    description: The finance group's sessions go after a day.
    action: delete_session
    after: 1d
    scope: {groups: [Finanse]}
  - name: recordings-1d
    description: Every recording goes a day after its session.
    action: delete_recordings
    after: 1d
    match: {has_recording: true}
"""


def refused_events(deployed: Service) -> list[dict[str, Any]]:
    return [e for e in deployed.events() if e["event"] == "refused"]


def assert_refused(result: Any, *named: str) -> None:
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "reason: unknown_name" in result.stderr.splitlines(), result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors, result.stderr
    assert all(name in errors[0] for name in named), errors


@pytest.mark.parametrize("kind", sorted(UNKNOWN))
def test_a_hold_naming_an_unknown_name_stops_plan_and_run_with_exit_3(
    service: Callable[..., Service], kind: str
) -> None:
    deployed = service(*SANDBOX, policies=DELETE_OLDER_THAN_1D)
    key, name = UNKNOWN[kind]
    (deployed.policy_dir / "holds.yaml").write_text(
        f"holds:\n  - id: LIT-4\n    reason: Litigation.\n    scope: {{{key}: [{name}]}}\n"
    )
    assert_refused(deployed.cli("plan"), "LIT-4", name)
    assert_refused(deployed.cli("plan", "--out", str(deployed.root / "plan.json")), "LIT-4")
    assert not (deployed.root / "plan.json").exists(), "no plan is written under a shrunk hold"
    assert_refused(deployed.cli("run", "--yes"), "LIT-4", name)
    assert deployed.deletes() == []
    (event,) = refused_events(deployed)
    assert event["reason"] == "unknown_name"
    assert "LIT-4" in str(event["details"]), event
    assert name in str(event["details"]), event
    assert not [e for e in deployed.events() if e["event"] == "intent"]


def test_a_policy_naming_an_unknown_group_is_refused_alone_and_the_others_proceed(
    service: Callable[..., Service],
) -> None:
    deployed = service(*SANDBOX, policies=POLICY_ON_A_MISSPELT_GROUP)
    run = deployed.cli("run", "--yes")
    assert_refused(run, "finance-sessions", "Finanse")
    assert "the other policies' removals were made" in run.stderr
    deletes = deployed.deletes()
    assert deletes, "the other policy's removals were made"
    assert all(d["path"].endswith("/recordings") for d in deletes), "no session was deleted"
    events = deployed.events()
    intents = [e for e in events if e["event"] == "intent"]
    assert {e["policy"] for e in intents} == {"recordings-1d"}
    assert len(intents) == len(deletes)
    (refused,) = [e for e in events if e["event"] == "refused"]
    assert refused["reason"] == "unknown_name"
    assert "finance-sessions" in str(refused["details"]), refused
    (finished,) = [e for e in events if e["event"] == "run_finished"]
    assert finished["details"]["result"] == "refused"
    assert finished["details"]["counts"]["deleted"] == len(deletes)
