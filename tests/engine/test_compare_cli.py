"""`retention plan --compare-to DIR` as a subprocess against the sandbox: the change counts
exactly the difference of the two folders' plans, each made on its own by `plan`."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import FAST_RATE, Deployment, deploy

from retention.sandbox.policies import BOARD_7Y, policy_set, rule

BASE = policy_set(rule("recordings", 30), rule("sessions", 90))
CHANGE = policy_set(
    rule("recordings", 20),
    rule("sessions", 120),
    rule("attendees", 60),
    BOARD_7Y,
    holds="  - {id: LIT-9, reason: Litigation., scope: {groups: [Sales]}}\n",
)
AS_OF = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Deployment:
    server = sandbox("--seed", "7", "--days", "100", "--sessions-per-day", "3")
    base = tmp_path / "main" / "policies"
    base.mkdir(parents=True)
    (base / "policies.yaml").write_text(BASE)
    return deploy(server, tmp_path, CHANGE, RETENTION_RATE_LIMIT=FAST_RATE)


def base_dir(deployment: Deployment) -> Path:
    return deployment.root / "main" / "policies"


def plan_json(deployment: Deployment, *args: str, policy_dir: Path | None = None) -> Any:
    extra = {"RETENTION_POLICY_DIR": str(policy_dir)} if policy_dir else None
    done = deployment.cli(
        "plan", "--as-of", AS_OF, "--format", "json", *args, extra_env=extra, check=True
    )
    return json.loads(done.stdout)


def removals(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(i["sessionId"], i["action"]): i["policy"] for i in document["items"]}


def blockers(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (b["sessionId"], b["action"], b["by"])
        for b in document["blocked"]
        if b["by"].startswith(("hold:", "retain:"))
    }


def test_compare_to_counts_exactly_the_difference_of_the_two_plans(
    deployment: Deployment,
) -> None:
    base = plan_json(deployment, policy_dir=base_dir(deployment))
    change = plan_json(deployment)
    before, after = removals(base), removals(change)
    added = set(after) - set(before)
    dropped = set(before) - set(after)
    assert added
    assert dropped
    assert blockers(change) - blockers(base)

    shown = plan_json(deployment, "--compare-to", str(base_dir(deployment)))

    assert {(i["sessionId"], i["action"]) for i in shown["added"]} == added
    assert {(i["sessionId"], i["action"]) for i in shown["dropped"]} == dropped
    counted = Counter(after[key] for key in added)
    lost = Counter(before[key] for key in dropped)
    assert shown["by_policy"] == {
        name: {"added": counted[name], "dropped": lost[name]}
        for name in sorted(set(counted) | set(lost))
    }
    started = {(b["sessionId"], b["action"], b["by"]) for b in shown["blocking"]["started"]}
    stopped = {(b["sessionId"], b["action"], b["by"]) for b in shown["blocking"]["stopped"]}
    assert started == blockers(change) - blockers(base)
    assert stopped == blockers(base) - blockers(change)
    assert {by.split(":")[0] for _, _, by in started} == {"hold", "retain"}
    assert shown["base"] == str(base_dir(deployment))
    assert shown["offline"] is False

    offline = plan_json(deployment, "--compare-to", str(base_dir(deployment)), "--offline")
    assert offline["offline"] is True
    assert (offline["added"], offline["dropped"]) == (shown["added"], shown["dropped"])


def test_compare_to_as_markdown_is_a_pull_request_comment(deployment: Deployment) -> None:
    result = deployment.cli(
        "plan", "--compare-to", str(base_dir(deployment)), "--format", "markdown", check=True
    )

    lines = result.stdout.splitlines()
    assert lines[0].startswith("### Retention policy change: ")
    assert "| policy | added | dropped |" in lines
    assert any(line.startswith("| attendees-60d | ") for line in lines)
    assert any(line.startswith("<details><summary>Added removals (") for line in lines)


def test_an_invalid_compare_folder_is_exit_2_naming_the_file_and_line(
    deployment: Deployment,
) -> None:
    broken = base_dir(deployment) / "policies.yaml"
    broken.write_text(BASE.replace("after: 90d", "after: 90"))

    result = deployment.cli("plan", "--compare-to", str(base_dir(deployment)))

    assert result.returncode == 2
    assert f"{broken}:" in result.stderr
    assert "has no unit" in result.stderr
    assert "Traceback" not in result.stderr
    assert deployment.requests() == []
