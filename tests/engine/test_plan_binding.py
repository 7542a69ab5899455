"""A plan is bound to its time and account: previews, other accounts, applied plans, old files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import records
from plans import load_folder, plan_for

from retention.engine.plan import Plan
from retention.engine.planfile import plan_refusals, read_plan_file
from retention.engine.planitem import plan_hash
from retention.engine.records import SessionRecord
from retention.policy import PolicySet
from retention.sandbox.policies import policy_set, rule

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
POLICIES = policy_set(rule("sessions", 30))


def record(session_id: int, ended: datetime) -> SessionRecord:
    return records.ended(
        session_id,
        at=ended,
        meeting_id=500 + session_id,
        attendee_count=2,
        recording_id=None,
        recording_bytes=None,
    )


@pytest.fixture
def policy_set(tmp_path: Path) -> PolicySet:
    return load_folder(tmp_path, POLICIES)


SESSIONS = [record(1, NOW - timedelta(days=40)), record(2, NOW - timedelta(days=10))]


def plan_as_of(policy_set: PolicySet, as_of: datetime, **binding: Any) -> Plan:
    return plan_for(SESSIONS, policy_set, as_of, plan_id="plan-1", created_at=NOW, **binding)


def refusals(policy_set: PolicySet, document: dict[str, Any], **current: Any) -> list[Any]:
    loaded = read_plan_file("plan.json", json.dumps(document))
    return plan_refusals(
        loaded,
        known_hash=document["plan_hash"],
        policies_digest=policy_set.digest,
        now=current.pop("now", NOW),
        max_age=timedelta(hours=24),
        **current,
    )


def test_a_plan_as_of_the_future_is_a_preview_and_apply_refuses_it_naming_as_of(
    policy_set: PolicySet,
) -> None:
    future = plan_as_of(policy_set, NOW + timedelta(days=30))
    document = future.document()
    assert document["preview"] is True
    assert document["as_of"] == "2026-12-23T12:00:00Z"
    assert {item["sessionId"] for item in document["items"]} == {"1", "2"}
    found = refusals(policy_set, document)
    assert [code for code, _ in found] == ["preview_plan"]
    assert "2026-12-23T12:00:00Z" in found[0][1]


def test_a_plan_within_the_skew_tolerance_is_not_a_preview(policy_set: PolicySet) -> None:
    near = plan_as_of(policy_set, NOW + timedelta(seconds=299))
    assert near.document()["preview"] is False
    assert refusals(policy_set, near.document()) == []
    tight = plan_as_of(policy_set, NOW + timedelta(seconds=299), max_clock_skew=timedelta(0))
    assert tight.preview is True


def test_a_plan_records_its_account_and_base_url_and_is_refused_elsewhere(
    policy_set: PolicySet,
) -> None:
    binding = {"account_key": "7000001", "api_base_url": "http://a.example/G2M/rest"}
    document = plan_as_of(policy_set, NOW, **binding).document()
    assert (document["account_key"], document["api_base_url"]) == (
        "7000001",
        "http://a.example/G2M/rest",
    )
    assert refusals(policy_set, document, **binding) == []
    found = refusals(
        policy_set, document, account_key="7000002", api_base_url="http://b.example/G2M/rest"
    )
    assert [code for code, _ in found] == ["other_account", "other_account"]
    assert "7000001" in found[0][1]
    assert "7000002" in found[0][1]
    assert "http://a.example/G2M/rest" in found[1][1]
    assert "http://b.example" in found[1][1]


def test_a_plan_applied_before_is_refused_naming_the_run(policy_set: PolicySet) -> None:
    document = plan_as_of(policy_set, NOW).document()
    found = refusals(policy_set, document, applied_by="run-20261123T120000Z-1")
    assert found == [
        ("applied_before", "plan plan-1 was already applied by run-20261123T120000Z-1")
    ]


def test_plan_files_written_before_the_binding_still_load_and_check(
    policy_set: PolicySet,
) -> None:
    document = plan_as_of(policy_set, NOW).document()
    for name in ("preview", "account_key", "api_base_url", "refused_policies", "limit"):
        del document[name]
    del document["summary"]["left_out"]
    document["plan_hash"] = plan_hash(document)
    loaded = read_plan_file("old.json", json.dumps(document))
    assert [item.session_id for item in loaded.items] == [1]
    assert loaded.account_key is None
    assert refusals(policy_set, document, account_key="7000002") == []


def test_a_plan_made_with_credentials_in_its_base_url_is_bound_to_the_url_without_them(
    policy_set: PolicySet,
) -> None:
    made = {"account_key": "7000001", "api_base_url": "http://ops:s3cr3t-pw@a.example/G2M/rest"}
    document = plan_as_of(policy_set, NOW, **made).document()
    assert (
        refusals(
            policy_set, document, account_key="7000001", api_base_url=("http://a.example/G2M/rest")
        )
        == []
    )
    found = refusals(
        policy_set, document, account_key="7000001", api_base_url="http://b.example/G2M/rest"
    )
    assert [code for code, _ in found] == ["other_account"]
    assert "s3cr3t-pw" not in found[0][1]
