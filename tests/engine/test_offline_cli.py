"""`retention plan --offline` as a subprocess: decides on the last inventory with the API out of
reach and says how old it is; an online plan that cannot reach the API says to use it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import FAST_RATE, Deployment, deploy

from retention.cli.planning import unreachable
from retention.goto.errors import ApiError, TlsError
from retention.sandbox.policies import BOARD_7Y, policy_set, rule

POLICIES = policy_set(rule("recordings", 30), rule("sessions", 90), BOARD_7Y)
AS_OF = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Deployment:
    server = sandbox("--seed", "7", "--days", "100", "--sessions-per-day", "3")
    return deploy(server, tmp_path, POLICIES, RETENTION_RATE_LIMIT=FAST_RATE)


def keys(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(item["sessionId"], item["action"]) for item in document["items"]}


def test_with_the_api_stopped_an_offline_plan_decides_on_the_last_inventory_and_states_its_age(
    deployment: Deployment, tmp_path: Path
) -> None:
    online = json.loads(
        deployment.cli("plan", "--as-of", AS_OF, "--format", "json", check=True).stdout
    )
    deployment.server.stop()  # connections to its port are refused from here on

    shown = deployment.cli("plan", "--offline", "--as-of", AS_OF, "--format", "json")

    assert shown.returncode == 0, shown.stderr
    offline = json.loads(shown.stdout)
    assert offline["offline"] is True
    assert online["offline"] is False
    assert isinstance(offline["inventory_age_s"], int)
    assert offline["inventory_age_s"] >= 0
    assert offline["inventory_at"] == online["inventory_at"]
    assert keys(offline) == keys(online)
    assert offline["blocked"] == online["blocked"]
    assert offline["account_key"] == online["account_key"] == "7000007"

    table = deployment.cli("plan", "--offline")
    assert table.returncode == 0, table.stderr
    assert f"offline: decided on the inventory of {online['inventory_at']}" in table.stdout
    assert " old)" in table.stdout

    plan_file = tmp_path / "offline.json"
    deployment.cli("plan", "--offline", "--out", str(plan_file), check=True)
    written = json.loads(plan_file.read_text())
    assert (written["offline"], written["inventory_at"]) == (True, online["inventory_at"])


def test_with_the_api_stopped_an_online_plan_says_to_plan_offline_and_exits_1(
    deployment: Deployment,
) -> None:
    deployment.server.stop()

    result = deployment.cli("plan")

    assert result.returncode == 1
    assert "error: cannot reach the GoTo API at" in result.stderr
    assert "ConnectError" in result.stderr
    assert "`retention plan --offline`" in result.stderr
    assert "Traceback" not in result.stderr
    assert deployment.env["RETENTION_CLIENT_SECRET"] not in result.stderr


def test_without_an_inventory_an_offline_plan_is_invalid_input_naming_the_scan_to_run(
    deployment: Deployment,
) -> None:
    deployment.server.stop()

    result = deployment.cli("plan", "--offline")

    assert result.returncode == 2
    assert "no inventory to plan offline on" in result.stderr
    assert "hint: run `retention inventory`" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (deployment.state_dir / "audit.db").exists()


def test_an_offline_plan_sends_nothing_and_apply_re_reads_and_applies_it(
    deployment: Deployment, tmp_path: Path
) -> None:
    deployment.cli("inventory", check=True)
    before = len(deployment.requests())
    plan_file = tmp_path / "offline.json"

    offline = ("plan", "--offline", "--policy", "recordings-30d", "--limit", "5")
    deployment.cli(*offline, "--out", str(plan_file), check=True)

    assert len(deployment.requests()) == before
    planned = json.loads(plan_file.read_text())
    assert planned["offline"] is True
    assert len(planned["items"]) == 5

    deployment.cli("apply", str(plan_file), "--yes", check=True)

    deleted = sorted(int(d["path"].split("/")[-2]) for d in deployment.deletes())
    assert deleted == sorted(int(item["sessionId"]) for item in planned["items"])


@pytest.mark.parametrize(
    ("failure", "says_offline"),
    [
        (ApiError("GET", "/organizers", None, detail="ConnectTimeout, still failing"), True),
        (ExceptionGroup("scan", [ApiError("GET", "/h", None, detail="ReadTimeout")]), True),
        (ApiError("GET", "/organizers", 503, detail="HTTP 503, still failing"), False),
        (TlsError("GET", "/organizers", detail="TLS certificate verification failed"), False),
    ],
)
def test_only_a_call_that_got_no_answer_is_taken_for_an_api_out_of_reach(
    failure: Exception, says_offline: bool
) -> None:
    assert (unreachable(failure) is not None) is says_offline
