"""Each item is decided again on the fresh session, the plan's policies, holds in force and now."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records
from plans import plan_for

from retention.engine.planitem import PlanItem
from retention.engine.recheck import Rechecker, recheck
from retention.engine.records import SessionRecord
from retention.policy import PolicySet, load_policy_set

NOW = datetime(2026, 11, 23, tzinfo=UTC)
POLICIES = """
policies:
  - name: sales-sessions-30d
    description: Sales sessions go after 30 days.
    action: delete_session
    after: 30d
    scope: {groups: [Sales]}
  - name: recordings-7d
    description: Recordings go after a week.
    action: delete_recordings
    after: 7d
  - name: attendees-7d
    description: Attendee lists go after a week.
    action: delete_attendees
    after: 7d
  - name: board-7y
    description: Board meetings are kept seven years.
    action: retain
    after: 7y
    match: {subject: "^Board"}
"""
HOLD = """
holds:
  - id: LIT-9
    reason: Litigation.
    scope: {groups: [Legal]}
"""


def record(session_id: int = 1, *, ended_days_ago: int = 40, **changes: object) -> SessionRecord:
    changes.setdefault("recording_id", "rec-1")
    return records.ended(session_id, at=NOW - timedelta(days=ended_days_ago), **changes)


def load(tmp_path: Path, *texts: str) -> PolicySet:
    folder = tmp_path / f"set{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for index, text in enumerate(texts):
        (folder / f"{index}.yaml").write_text(text)
    return load_policy_set([folder])


@pytest.fixture
def policy_set(tmp_path: Path) -> PolicySet:
    return load(tmp_path, POLICIES)


def items_for(
    session: SessionRecord, policy_set: PolicySet, as_of: datetime = NOW
) -> list[PlanItem]:
    return plan_for([session], policy_set, as_of).items


def test_an_unchanged_item_is_sent(policy_set: PolicySet) -> None:
    session = record()
    [item] = items_for(session, policy_set)
    assert item.action == "delete_session"
    assert recheck(item, session, policy_set, NOW).decision == "send"


def test_an_organizer_moved_into_a_held_group_is_skipped_naming_the_hold(tmp_path: Path) -> None:
    policy_set = load(tmp_path, POLICIES, HOLD)
    session = record()
    [item] = items_for(session, policy_set)
    moved = dataclasses.replace(session, group_key=30, group_name="Legal")
    verdict = recheck(item, moved, policy_set, NOW)
    assert (verdict.decision, verdict.reason) == ("skipped_hold", "now held by hold:LIT-9")


def test_a_session_that_left_the_policys_scope_is_skipped(policy_set: PolicySet) -> None:
    session = record()
    [item] = items_for(session, policy_set)
    moved = dataclasses.replace(session, group_key=20, group_name="Support")
    verdict = recheck(item, moved, policy_set, NOW)
    assert verdict.decision == "skipped_changed"
    assert verdict.reason == "the session left policy sales-sessions-30d's scope"


def test_an_item_planned_for_the_future_is_not_due_now(policy_set: PolicySet) -> None:
    session = record(ended_days_ago=10)
    [item] = items_for(session, policy_set, NOW + timedelta(days=30))
    verdict = recheck(item, session, policy_set, NOW)
    assert verdict.decision == "skipped_changed"
    assert verdict.reason is not None
    assert verdict.reason.startswith("no longer due under sales-sessions-30d: first due")


def test_a_session_now_under_a_retain_rule_is_skipped(policy_set: PolicySet) -> None:
    session = record()
    [item] = items_for(session, policy_set)
    verdict = recheck(item, dataclasses.replace(session, subject="Board prep"), policy_set, NOW)
    assert (verdict.decision, verdict.reason) == ("skipped_changed", "now retained by board-7y")


def test_gone_sessions_recordings_and_attendee_lists_are_named(policy_set: PolicySet) -> None:
    session = record(ended_days_ago=10)
    items = {item.action: item for item in items_for(session, policy_set)}
    assert set(items) == {"delete_recordings", "delete_attendees"}
    gone = recheck(items["delete_recordings"], None, policy_set, NOW)
    assert gone.reason == "the session is no longer in the organizer's history"
    bare = dataclasses.replace(session, recording_id=None, recording_bytes=None, attendee_count=0)
    assert recheck(items["delete_recordings"], bare, policy_set, NOW).reason == (
        "the recording is gone"
    )
    assert recheck(items["delete_attendees"], bare, policy_set, NOW).reason == "no attendees left"
    other = dataclasses.replace(session, recording_id="rec-2")
    assert recheck(items["delete_recordings"], other, policy_set, NOW).reason == (
        "the recording changed (rec-1 planned, rec-2 now)"
    )


def test_an_item_whose_session_delete_became_due_is_still_sent(policy_set: PolicySet) -> None:
    session = record(ended_days_ago=10)
    items = items_for(session, policy_set)
    later = NOW + timedelta(days=25)
    checker = Rechecker(policy_set)
    assert [checker(item, session, later).decision for item in items] == ["send", "send"]
