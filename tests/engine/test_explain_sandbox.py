"""Explain agrees with plan on every session of a generated account: engine and CLI.

Each planned item is `due` under its policy, each blocked one `held` or `retained` by the
blocker the plan names first, and nothing outside the plan is `due`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiclient import client_for
from explain_checks import check_agreement
from plans import plan_for
from support import Deployment

from retention import examples
from retention.engine.explain import Explainer
from retention.engine.inventory import iter_sessions
from retention.engine.scan import scan
from retention.engine.state import open_state_db
from retention.policy import load_policy_set
from retention.sandbox import SandboxOptions, create_app, generate_account

NOW = datetime(2026, 11, 23, tzinfo=UTC)
DAYS = 400


@pytest.mark.anyio
async def test_explain_agrees_with_plan_for_every_session_of_a_generated_account(
    tmp_path: Path,
) -> None:
    account = generate_account(
        seed=42, organizers=40, groups=7, days=DAYS, sessions_per_day=6, now=NOW
    )
    db = open_state_db(tmp_path / "state.db")
    async with client_for(create_app(account, SandboxOptions()), tmp_path) as client:
        report = await scan(
            client,
            db,
            now=NOW,
            window_days=30,
            start=NOW - timedelta(days=DAYS + 1),
            settle=timedelta(hours=6),
            full=False,
            concurrency=8,
        )
    assert report.complete
    policies = load_policy_set([examples.POLICIES])
    sessions = list(iter_sessions(db))
    plan = plan_for(sessions, policies, NOW)
    explain = Explainer(policies, NOW)

    seen = check_agreement(plan, {record.session_id: explain(record) for record in sessions})

    assert len(sessions) > 1000
    assert plan.items
    assert plan.blocked
    assert {"due", "not_yet", "held", "retained", "no_op"} <= set(seen)


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Deployment:
    server = sandbox(
        "--seed",
        "42",
        "--organizers",
        "10",
        "--groups",
        "7",
        "--days",
        "120",
        "--sessions-per-day",
        "5",
    )
    policy_dir = tmp_path / "policies"
    shutil.copytree(examples.POLICIES, policy_dir)
    scan_start = (datetime.now(UTC) - timedelta(days=130)).date().isoformat()
    env = server.service_env(tmp_path / "state", policy_dir, RETENTION_SCAN_START=scan_start)
    return Deployment(server, tmp_path, env)


def explain_json(deployment: Deployment, session_id: str) -> dict[str, Any]:
    done = deployment.cli("explain", session_id, "--format", "json", check=True)
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def test_explain_through_the_cli_agrees_with_plan_refuses_unknown_ids_and_sums_organizers(
    deployment: Deployment,
) -> None:
    before = deployment.cli("explain", "900001")
    assert before.returncode == 2
    assert "retention inventory" in before.stderr

    deployment.cli("inventory", check=True)
    plan = json.loads(deployment.cli("plan", "--format", "json", check=True).stdout)
    calls = len(deployment.requests())
    item = plan["items"][0]
    blocked = next(b for b in plan["blocked"] if b["by"].startswith(("hold:", "retain:")))
    planned_ids = {i["sessionId"] for i in plan["items"]} | {
        b["sessionId"] for b in plan["blocked"]
    }

    due = explain_json(deployment, item["sessionId"])
    kept = explain_json(deployment, blocked["sessionId"])
    text = deployment.cli("explain", blocked["sessionId"], check=True).stdout

    assert due["sessionId"] == item["sessionId"]
    assert isinstance(due["inventory_age_s"], int)
    verdict = next(a for a in due["actions"] if a["action"] == item["action"])
    assert (verdict["verdict"], verdict["policy"]) == ("due", item["policy"])
    verdict = next(a for a in kept["actions"] if a["action"] == blocked["action"])
    assert verdict["verdict"] in {"held", "retained"}
    assert verdict["by"] == blocked["by"]
    assert kept["session"]["organizerKey"] == blocked["organizerKey"]
    assert {rule["name"] for rule in kept["matched"]} >= {"legal-keep-7y", "recordings-90d"}
    assert max(len(line) for line in text.splitlines()) <= 80
    assert blocked["by"] in text
    assert len(deployment.requests()) == calls  # explain read the inventory only

    others = [
        f"{session_id}"
        for session_id in range(900001, 900040)
        if str(session_id) not in planned_ids
    ]
    document = explain_json(deployment, others[0])
    assert all(a["verdict"] != "due" for a in document["actions"])

    unknown = deployment.cli("explain", "12345")
    summary = deployment.cli("explain", "--organizer", "1001", "--format", "json", check=True)
    table = deployment.cli("explain", "--organizer", "1001", check=True)

    assert unknown.returncode == 2
    assert "session 12345 is not in the inventory" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    document = json.loads(summary.stdout)
    assert document["sessions"] > 0
    for counts in document["actions"].values():
        assert sum(counts.values()) == document["sessions"]
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
