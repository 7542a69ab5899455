"""Random plans, clocks and changes between plan and send: recheck lets through only what is due.

Each example plans on one set of facts (policies, holds, sessions, an as-of that may be far in
the future), then changes them (the policies and holds in force, organizers' groups, recordings
and attendee lists removed, sessions gone, the clock) and rechecks every item. The oracle is
`decide` itself on the changed inputs, never recheck asking itself.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plans import plan_for

from retention.engine.decide import decide
from retention.engine.recheck import Rechecker
from retention.engine.records import SessionRecord
from retention.policy import PolicySet, load_policy_set

NOW = datetime(2026, 11, 23, tzinfo=UTC)
GROUPS = [(10, "Sales"), (20, "Support"), (30, "Legal")]
SUBJECTS = ["Weekly sync", "Board prep", "1:1"]
POLICY_TEXTS = {
    "sessions": """
  - name: sales-sessions-90d
    description: Sales sessions go after 90 days.
    action: delete_session
    after: 90d
    scope: {groups: [Sales]}""",
    "recordings": """
  - name: recordings-30d
    description: Recordings go after 30 days.
    action: delete_recordings
    after: 30d""",
    "attendees": """
  - name: attendees-7d
    description: Attendee lists go after a week.
    action: delete_attendees
    after: 7d
    scope: {groups: [Sales, Support]}""",
    "everything": """
  - name: all-sessions-1y
    description: Every session goes after a year.
    action: delete_session
    after: 1y""",
    "retain": """
  - name: board-7y
    description: Board meetings are kept seven years.
    action: retain
    after: 7y
    match: {subject: "^Board"}""",
}
HOLD_TEXTS = {
    "legal": """
  - id: LIT-1
    reason: Litigation.
    scope: {groups: [Legal]}""",
    "session": """
  - id: LIT-2
    reason: One session.
    sessions: [3, 5]""",
    "board": """
  - id: LIT-3
    reason: Board matters.
    subject: "Board"
    expires: 2026-12-01""",
}
POLICY_CHOICES = [
    ("sessions", "recordings", "retain"),
    ("sessions", "recordings", "attendees", "retain"),
    ("everything", "recordings"),
    ("recordings", "attendees"),
    ("sessions", "attendees", "everything", "retain"),
]
HOLD_CHOICES = [(), ("legal",), ("session",), ("legal", "board"), ("session", "board")]
SETS: dict[tuple[int, int], PolicySet] = {}


@pytest.fixture(scope="module", autouse=True)
def policy_sets(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("sets")
    for p, h in itertools.product(range(len(POLICY_CHOICES)), range(len(HOLD_CHOICES))):
        folder: Path = root / f"{p}-{h}"
        folder.mkdir()
        text = "policies:" + "".join(POLICY_TEXTS[name] for name in POLICY_CHOICES[p]) + "\n"
        if HOLD_CHOICES[h]:
            text += "holds:" + "".join(HOLD_TEXTS[name] for name in HOLD_CHOICES[h]) + "\n"
        (folder / "set.yaml").write_text(text)
        SETS[(p, h)] = load_policy_set([folder])


def make_session(session_id: int, values: dict[str, Any]) -> SessionRecord:
    end = NOW - timedelta(days=values["ended_days_ago"])
    group_key, group_name = GROUPS[values["group"]]
    return SessionRecord(
        session_id=session_id,
        meeting_id=100 + session_id,
        organizer_key=1000 + values["group"],
        organizer_email=None,
        group_key=group_key,
        group_name=group_name,
        subject=SUBJECTS[values["subject"]],
        meeting_type="scheduled",
        start_time=end - timedelta(hours=1),
        end_time=end,
        attendee_count=values["attendees"],
        recording_id=f"rec-{session_id}" if values["recording"] else None,
        recording_bytes=10 if values["recording"] else None,
    )


SESSION = st.fixed_dictionaries(
    {
        "ended_days_ago": st.integers(0, 800),
        "group": st.integers(0, 2),
        "subject": st.integers(0, 2),
        "attendees": st.integers(0, 3),
        "recording": st.booleans(),
    }
)
CHANGE = st.fixed_dictionaries(
    {
        "gone": st.booleans(),
        "group": st.none() | st.integers(0, 2),
        "subject": st.none() | st.integers(0, 2),
        "recording_removed": st.booleans(),
        "attendees_removed": st.booleans(),
    }
)


def changed(session: SessionRecord, change: dict[str, Any]) -> SessionRecord | None:
    if change["gone"]:
        return None
    fresh = session
    if change["group"] is not None:
        key, name = GROUPS[change["group"]]
        fresh = dataclasses.replace(fresh, group_key=key, group_name=name)
    if change["subject"] is not None:
        fresh = dataclasses.replace(fresh, subject=SUBJECTS[change["subject"]])
    if change["recording_removed"]:
        fresh = dataclasses.replace(fresh, recording_id=None, recording_bytes=None)
    if change["attendees_removed"]:
        fresh = dataclasses.replace(fresh, attendee_count=0)
    return fresh


def only(policy_set: PolicySet, name: str) -> PolicySet:
    kept = tuple(p for p in policy_set.policies if p.name == name or p.action == "retain")
    return dataclasses.replace(policy_set, policies=kept)


def covers(actions: Any, action: str) -> bool:
    return any(p.action in (action, "delete_session") for p in actions)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    sessions=st.lists(SESSION, min_size=1, max_size=8),
    changes=st.lists(CHANGE, min_size=8, max_size=8),
    planned_under=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    sent_under=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    plan_offset_days=st.integers(-30, 800),
    send_offset_seconds=st.integers(-3600, 90 * 86_400),
)
def test_every_item_recheck_sends_is_called_for_by_a_fresh_decision_on_the_facts_at_send_time(
    sessions: list[dict[str, Any]],
    changes: list[dict[str, Any]],
    planned_under: tuple[int, int],
    sent_under: tuple[int, int],
    plan_offset_days: int,
    send_offset_seconds: int,
) -> None:
    records = [make_session(n + 1, values) for n, values in enumerate(sessions)]
    plan_set, send_set = SETS[planned_under], SETS[sent_under]
    as_of = NOW + timedelta(days=plan_offset_days)
    now = NOW + timedelta(seconds=send_offset_seconds)
    plan = plan_for(records, plan_set, as_of, created_at=NOW)
    checker = Rechecker(send_set)
    enabled = {p.name for p in send_set.enabled_policies}
    for item in plan.items:
        before = next(r for r in records if r.session_id == item.session_id)
        fresh = changed(before, changes[item.session_id - 1])
        verdict = checker(item, fresh, now)
        if fresh is None:
            assert verdict.decision == "skipped_changed"
            continue
        [whole] = decide([fresh], send_set, now)
        assert (verdict.decision == "skipped_hold") == bool(whole.holds)
        if verdict.send:
            # a fresh plan on the facts at send time removes this (or the whole session)
            assert covers(whole.actions, item.action), (item, whole)
            assert item.policy in enabled
            continue
        assert verdict.reason
        if verdict.decision == "skipped_changed" and item.policy in enabled:
            # skipped only when the item's own policy, with every retain rule and hold in
            # force, no longer calls for it, or the recording is another one than planned
            [own] = decide([fresh], only(send_set, item.policy), now)
            other_recording = (
                item.action == "delete_recordings" and fresh.recording_id != item.recording_id
            )
            assert other_recording or not covers(own.actions, item.action), (item, own, verdict)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sessions=st.lists(SESSION, min_size=1, max_size=8),
    under=st.tuples(st.integers(0, 4), st.integers(0, 4)),
    plan_offset_days=st.integers(1, 800),
)
def test_with_nothing_changed_a_future_plans_items_are_sent_only_when_due_now(
    sessions: list[dict[str, Any]], under: tuple[int, int], plan_offset_days: int
) -> None:
    records = [make_session(n + 1, values) for n, values in enumerate(sessions)]
    policy_set = SETS[under]
    future = NOW + timedelta(days=plan_offset_days)
    plan = plan_for(records, policy_set, future, created_at=NOW)
    due_now = plan_for(records, policy_set, NOW, plan_id="q")
    checker = Rechecker(policy_set)
    by_id = {r.session_id: r for r in records}
    sent = {item.key for item in plan.items if checker(item, by_id[item.session_id], NOW).send}
    planned_now = {item.key for item in due_now.items}
    sessions_now = {sid for sid, action in planned_now if action == "delete_session"}
    assert all(key in planned_now or key[0] in sessions_now for key in sent)
