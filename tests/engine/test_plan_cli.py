"""`retention plan` as a subprocess against the sandbox: previews are refused, --limit batches."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import FAST_RATE, Deployment, deploy

from retention.sandbox.policies import BOARD_7Y, policy_set, rule

POLICIES = policy_set(rule("recordings", 30), rule("sessions", 90), BOARD_7Y)


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Deployment:
    server = sandbox("--seed", "7", "--days", "100", "--sessions-per-day", "3")
    return deploy(server, tmp_path, POLICIES, RETENTION_RATE_LIMIT=FAST_RATE)


def test_a_plan_as_of_the_future_is_a_preview_that_apply_refuses(
    deployment: Deployment, tmp_path: Path
) -> None:
    plan_file = tmp_path / "future.json"
    shown = deployment.cli("plan", "--as-of", "2040-01-01", "--out", str(plan_file), check=True)
    plan = json.loads(plan_file.read_text())
    now = json.loads(deployment.cli("plan", "--format", "json", check=True).stdout)
    assert plan["preview"] is True
    assert len(plan["items"]) > len(now["items"])
    assert "preview" in shown.stdout
    assert "apply it with" not in shown.stdout

    result = deployment.cli("apply", str(plan_file), "--yes")

    assert result.returncode == 3
    assert "preview" in result.stderr
    assert "2040-01-01T00:00:00Z" in result.stderr
    assert "Traceback" not in result.stderr
    assert deployment.deletes() == []


def test_limit_keeps_the_oldest_items_and_says_how_many_it_left_out(
    deployment: Deployment, tmp_path: Path
) -> None:
    whole = json.loads(
        deployment.cli("plan", "--policy", "recordings-30d", "--format", "json", check=True).stdout
    )
    assert len(whole["items"]) > 3
    plan_file = tmp_path / "batch.json"
    shown = deployment.cli(
        "plan", "--policy", "recordings-30d", "--limit", "3", "--out", str(plan_file), check=True
    )
    batch = json.loads(plan_file.read_text())
    assert [item["sessionId"] for item in batch["items"]] == [
        item["sessionId"] for item in whole["items"][:3]
    ]
    starts = [item["startTime"] for item in whole["items"]]
    assert starts == sorted(starts)
    left_out = len(whole["items"]) - 3
    assert batch["summary"]["left_out"] == left_out
    assert f"left out {left_out}" in shown.stdout

    deployment.cli("apply", str(plan_file), "--yes", check=True)

    assert sorted(int(d["path"].split("/")[-2]) for d in deployment.deletes()) == sorted(
        int(item["sessionId"]) for item in batch["items"]
    )


def test_apply_refuses_a_plan_made_against_another_base_url(
    deployment: Deployment, tmp_path: Path
) -> None:
    plan_file = tmp_path / "plan.json"
    deployment.cli("plan", "--out", str(plan_file), check=True)
    made_against = json.loads(plan_file.read_text())["api_base_url"]
    assert made_against == deployment.env["RETENTION_API_BASE_URL"]
    elsewhere = "http://127.0.0.1:9/G2M/rest"

    result = deployment.cli(
        "apply", str(plan_file), "--yes", extra_env={"RETENTION_API_BASE_URL": elsewhere}
    )

    assert result.returncode == 3
    # The state directory recorded the plan's base URL when the plan was made: it refuses first.
    said = result.stderr.replace("\n", " ")
    assert f"belongs to account 7000007 at {made_against}" in said
    assert f"the settings reach account 7000007 at {elsewhere}" in said
    assert deployment.deletes() == []
