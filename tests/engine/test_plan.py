"""Plans: items, blocked and unknown entries, summaries, caps, and the plan file's checks."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records
from plans import load_folder, plan_for

from retention.engine.caps import CapViolation, cap_violations
from retention.engine.plan import Plan
from retention.engine.planfile import plan_refusals, read_plan_file
from retention.engine.planitem import PLAN_FORMAT, plan_hash
from retention.engine.records import SessionRecord
from retention.errors import InvalidInput
from retention.policy import PolicySet
from retention.sandbox.policies import policy_set, rule

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)

POLICIES = policy_set(
    rule("recordings", 30, match=None, limits="{max_deletions: 2}"),
    rule("sessions", "1y", limits="{max_percent: 50}"),
    holds="  - {id: LIT-1, reason: Litigation., sessions: [3]}\n",
)


def session(session_id: int, *, ended_days_ago: int, recording: bool = True) -> SessionRecord:
    media = {"recording_name": "Weekly sync", "recording_bytes": 1000 * session_id}
    return records.ended(
        session_id,
        at=AS_OF - timedelta(days=ended_days_ago),
        meeting_id=100 + session_id,
        attendee_count=4,
        **(media if recording else {"recording_id": None, "recording_bytes": None}),
    )


@pytest.fixture
def policy_set(tmp_path: Path) -> PolicySet:
    return load_folder(tmp_path, POLICIES)


SESSIONS = [
    session(1, ended_days_ago=40),  # recording due
    session(2, ended_days_ago=400),  # whole session due
    session(3, ended_days_ago=400),  # held
    session(4, ended_days_ago=10),  # not old enough
    session(5, ended_days_ago=60, recording=False),  # nothing to delete
]


def make_plan(policy_set: PolicySet, selected: list[str] | None = None) -> Plan:
    return plan_for(SESSIONS, policy_set, AS_OF, plan_id="plan-1", selected=selected)


def test_plan_lists_due_actions_and_names_the_hold_that_blocked_one(policy_set: PolicySet) -> None:
    plan = make_plan(policy_set)
    assert [(i.session_id, i.action, i.policy) for i in plan.items] == [
        (2, "delete_session", "sessions-1y"),  # oldest session first
        (1, "delete_recordings", "recordings-30d"),
    ]
    assert plan.items[0].also_matched == ("recordings-30d",)
    assert [(b["sessionId"], b["action"], b["by"]) for b in plan.blocked] == [
        ("3", "delete_session", "hold:LIT-1")
    ]


def test_summary_counts_recordings_bytes_and_attendee_lists(policy_set: PolicySet) -> None:
    summary = make_plan(policy_set).summary()
    assert summary["sessions_scanned"] == 5
    assert summary["total"] == {
        "sessions": 1,
        "recordings": 2,
        "recording_bytes": 1000 + 2000,
        "attendee_lists": 1,
        "attendees": 4,
    }
    assert summary["per_policy"]["sessions-1y"]["in_scope"] == 5
    assert summary["blocked_by"] == {"hold:LIT-1": 1}


def test_policy_selection_keeps_only_the_named_policy_items(policy_set: PolicySet) -> None:
    plan = make_plan(policy_set, ["recordings-30d"])
    assert {i.policy for i in plan.items} == {"recordings-30d"}
    assert plan.document()["selected_policies"] == ["recordings-30d"]


def test_document_ids_are_strings_and_hash_covers_every_field(policy_set: PolicySet) -> None:
    document = make_plan(policy_set).document()
    assert document["format"] == PLAN_FORMAT
    item = document["items"][1]
    assert (item["organizerKey"], item["meetingId"], item["sessionId"]) == ("1001", "101", "1")
    # The documented recipe, written out here: sha256 of the UTF-8 JSON of every other field
    # with keys sorted and no spaces.
    body = {key: value for key, value in document.items() if key != "plan_hash"}
    recipe = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert document["plan_hash"] == hashlib.sha256(recipe.encode("utf-8")).hexdigest()
    reordered = dict(reversed(list(json.loads(json.dumps(document)).items())))
    assert plan_hash(reordered) == document["plan_hash"]
    tampered = json.loads(json.dumps(document))
    tampered["items"][0]["sessionId"] = "9"
    assert plan_hash(tampered) != document["plan_hash"]


def violations(
    policy_set: PolicySet, sessions: list[SessionRecord], max_per_run: int = 100
) -> list[CapViolation]:
    """The caps the plan of `sessions` overruns."""
    plan = plan_for(sessions, policy_set, AS_OF)
    return cap_violations(plan.items, policy_set, plan.in_scope, max_per_run=max_per_run)


def test_caps_name_policy_count_and_limit(policy_set: PolicySet) -> None:
    found = violations(policy_set, [session(n, ended_days_ago=40) for n in range(10, 13)])
    assert [(v.policy, v.cap, v.selected, v.limit) for v in found] == [
        ("recordings-30d", "max_deletions", 3, 2)
    ]
    assert "recordings-30d would make 3 removals" in found[0].describe()


def test_max_percent_compares_with_sessions_in_scope(policy_set: PolicySet) -> None:
    old_enough = [session(n, ended_days_ago=400) for n in range(20, 23)]
    found = violations(policy_set, [*old_enough, session(30, ended_days_ago=5)])
    assert [(v.policy, v.cap, v.selected, v.population) for v in found] == [
        ("sessions-1y", "max_percent", 3, 4)
    ]
    assert "3 of 4 sessions in its scope (75.0%)" in found[0].describe()


def test_run_cap_counts_every_item(policy_set: PolicySet) -> None:
    found = violations(policy_set, SESSIONS, max_per_run=1)
    assert [(v.cap, v.selected, v.limit) for v in found] == [("max_deletions_per_run", 2, 1)]


def test_plan_file_round_trips_and_a_fresh_unaltered_plan_has_no_refusal(
    policy_set: PolicySet,
) -> None:
    document = make_plan(policy_set).document()
    loaded = read_plan_file("plan.json", json.dumps(document))
    assert loaded.items == make_plan(policy_set).items
    refusals = plan_refusals(
        loaded,
        known_hash=document["plan_hash"],
        policies_digest=policy_set.digest,
        now=AS_OF + timedelta(hours=1),
        max_age=timedelta(hours=24),
    )
    assert refusals == []


def test_altered_stale_and_policy_changed_plans_are_each_refused(policy_set: PolicySet) -> None:
    document = make_plan(policy_set).document()
    original_hash = document["plan_hash"]
    document["items"][1]["action"] = "delete_session"
    loaded = read_plan_file("plan.json", json.dumps(document))
    refusals = plan_refusals(
        loaded,
        known_hash=original_hash,
        policies_digest="0" * 64,
        now=AS_OF + timedelta(hours=30),
        max_age=timedelta(hours=24),
    )
    assert [code for code, _ in refusals] == ["changed_plan", "changed_plan", "stale_plan"]
    assert "altered" in refusals[0][1]
    assert "policy and hold files changed" in refusals[1][1]
    assert "30.0 hours old" in refusals[2][1]


def test_plan_unknown_to_the_state_directory_is_refused(policy_set: PolicySet) -> None:
    document = make_plan(policy_set).document()
    loaded = read_plan_file("plan.json", json.dumps(document))
    refusals = plan_refusals(
        loaded,
        known_hash=None,
        policies_digest=policy_set.digest,
        now=AS_OF,
        max_age=timedelta(hours=24),
    )
    assert refusals == [
        ("changed_plan", "plan plan-1 was not made by this service's state directory")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "plan.json:1:2: not a JSON plan file"),
        ('{"format": "other"}', "plan.json: not a plan file"),
        (json.dumps({"format": PLAN_FORMAT, "items": [{}]}), "missing or has a malformed field"),
        (
            '{"format": "x", "items": [{"sessionId": "9", "sessionId": "1"}]}',
            "plan.json: not a plan file `retention plan` wrote: the key 'sessionId' appears twice",
        ),
        ('{"format": "x", "items": [], "limit": NaN}', "NaN is not a JSON number"),
    ],
)
def test_malformed_plan_files_are_invalid_input(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read_plan_file("plan.json", text)
