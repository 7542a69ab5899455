"""Explain: each verdict on hand-built sessions, its rule, blocker and due date, and the reasons."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records

from retention.engine.awaiting import awaiting_notice
from retention.engine.explain import Explainer, Explanation, explain
from retention.engine.records import SessionRecord
from retention.policy import PolicySet, load_policy_set
from retention.sandbox.policies import policy_set, rule

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)
BOARD = """\
  - name: keep-board-2y
    description: Board meetings are kept two years.
    action: retain
    after: 2y
    match: {subject: "(?i)board"}
"""
DISABLED = """\
  - name: interviews-7d
    description: Not in force yet.
    enabled: false
    action: delete_session
    after: 7d
"""
HOLDS = """\
  - {id: LIT-1, reason: Litigation., sessions: [9]}
  - {id: TMP-1, reason: Audit., meetings: [777], expires: 2027-06-30}
  - {id: OLD-1, reason: Closed case., all: true, expires: 2025-12-31}
"""
POLICIES = policy_set(
    rule("recordings", 30),
    rule("attendees", 60),
    rule("sessions", "1y"),
    BOARD,
    DISABLED,
    holds=HOLDS,
)


def load(tmp_path: Path, text: str) -> PolicySet:
    (tmp_path / "p.yaml").write_text(text)
    return load_policy_set([tmp_path])


@pytest.fixture
def policies(tmp_path: Path) -> PolicySet:
    return load(tmp_path, POLICIES)


def session(days_ago: int, session_id: int = 1, **changes: object) -> SessionRecord:
    return records.ended(session_id, at=AS_OF - timedelta(days=days_ago), **changes)


def verdicts(explanation: Explanation) -> dict[str, tuple[str, str | None, str | None]]:
    return {v.action: (v.verdict, v.policy, v.by) for v in explanation.actions}


def test_a_due_recording_names_its_rule_and_the_later_actions_their_dates(
    policies: PolicySet,
) -> None:
    record = session(40)
    explained = explain(record, policies, AS_OF)

    assert verdicts(explained) == {
        "delete_recordings": ("due", "recordings-30d", None),
        "delete_attendees": ("not_yet", "attendees-60d", None),
        "delete_session": ("not_yet", "sessions-1y", None),
    }
    # A due verdict gives the moment it became due: 30 days after the session ended.
    assert explained.verdict("delete_recordings").due == record.end_time + timedelta(days=30)
    assert explained.verdict("delete_attendees").due == record.end_time + timedelta(days=60)
    assert explained.verdict("delete_session").due == datetime(2027, 10, 14, tzinfo=UTC)


def test_a_due_session_delete_subsumes_the_recording_and_attendee_deletes(
    policies: PolicySet,
) -> None:
    explained = explain(session(400), policies, AS_OF)

    assert verdicts(explained) == {
        "delete_recordings": ("subsumed", "sessions-1y", None),
        "delete_attendees": ("subsumed", "sessions-1y", None),
        "delete_session": ("due", "sessions-1y", None),
    }


def test_a_hold_without_end_holds_every_action_and_nothing_ever_becomes_due(
    policies: PolicySet,
) -> None:
    explained = explain(session(400, session_id=9), policies, AS_OF)

    assert {v.verdict for v in explained.actions} == {"held"}
    assert {v.by for v in explained.actions} == {"hold:LIT-1"}
    assert [v.due for v in explained.actions] == [None, None, None]
    assert explained.verdict("delete_session").policy == "sessions-1y"


def test_a_hold_with_an_end_gives_the_later_of_its_lapse_and_the_rule_s_age(
    policies: PolicySet,
) -> None:
    record = session(40, meeting_id=777)
    explained = explain(record, policies, AS_OF)
    lapse = datetime(2027, 7, 1, tzinfo=UTC)

    assert verdicts(explained)["delete_recordings"] == ("held", "recordings-30d", "hold:TMP-1")
    assert explained.verdict("delete_recordings").due == lapse
    assert explained.verdict("delete_attendees").due == lapse
    assert explained.verdict("delete_session").due == record.end_time.replace(year=2027)


def test_a_retain_rule_blocks_and_sets_the_due_date_to_its_end(policies: PolicySet) -> None:
    record = session(400, subject="Board meeting")
    explained = explain(record, policies, AS_OF)

    assert verdicts(explained)["delete_session"] == (
        "retained",
        "sessions-1y",
        "retain:keep-board-2y",
    )
    assert explained.verdict("delete_session").due == record.end_time.replace(
        year=record.end_time.year + 2
    )
    assert explained.verdict("delete_recordings").verdict == "retained"


def test_no_rule_when_no_delete_rule_could_remove_it(tmp_path: Path) -> None:
    only_recordings = load(tmp_path, policy_set(rule("recordings", 30)))
    explained = explain(session(40), only_recordings, AS_OF)

    assert verdicts(explained) == {
        "delete_recordings": ("due", "recordings-30d", None),
        "delete_attendees": ("no_rule", None, None),
        "delete_session": ("no_rule", None, None),
    }


def test_nothing_to_remove_is_no_op(policies: PolicySet) -> None:
    no_media = session(40, recording_id=None, recording_bytes=None, attendee_count=0)
    explained = explain(no_media, policies, AS_OF)

    assert explained.verdict("delete_recordings").verdict == "no_op"
    assert explained.verdict("delete_attendees").verdict == "no_op"
    assert explained.verdict("delete_recordings").reason == "nothing to remove: no recording"


def test_an_unknown_end_or_count_makes_the_action_unknown(policies: PolicySet) -> None:
    no_end = explain(session(400, end_time=None), policies, AS_OF)
    no_count = explain(session(100, attendee_count=None), policies, AS_OF)

    assert {v.verdict for v in no_end.actions} == {"unknown"}
    assert "end_time" in no_end.verdict("delete_session").reason
    assert no_count.verdict("delete_attendees").verdict == "unknown"
    assert no_count.verdict("delete_recordings").verdict == "due"


def test_unknown_comes_before_held(policies: PolicySet) -> None:
    explained = explain(session(400, session_id=9, end_time=None), policies, AS_OF)

    assert {v.verdict for v in explained.actions} == {"unknown"}


def test_every_rule_and_hold_is_listed_with_whether_it_matches_and_why(
    policies: PolicySet,
) -> None:
    explained = explain(session(40, meeting_id=777), policies, AS_OF)
    rules = {f.name: f for f in explained.matched}
    holds = {f.name: f for f in explained.holds}

    assert sorted(rules) == [
        "attendees-60d",
        "interviews-7d",
        "keep-board-2y",
        "recordings-30d",
        "sessions-1y",
    ]
    assert rules["recordings-30d"].matches
    assert rules["recordings-30d"].kind == "delete_recordings"
    assert "due since" in rules["recordings-30d"].reason
    assert not rules["keep-board-2y"].matches
    assert "subject" in rules["keep-board-2y"].reason
    assert not rules["interviews-7d"].matches
    assert "disabled" in rules["interviews-7d"].reason
    assert holds["TMP-1"].matches
    assert "meeting 777" in holds["TMP-1"].reason
    assert not holds["LIT-1"].matches
    assert not holds["OLD-1"].matches
    assert "lapsed" in holds["OLD-1"].reason
    assert explained.to_json()["holds"][0] == {
        "id": "LIT-1",
        "kind": "hold",
        "matches": False,
        "reason": "lists neither this session nor its meeting",
    }


def test_a_scope_that_does_not_cover_the_organizer_says_so(tmp_path: Path) -> None:
    scoped = load(tmp_path, policy_set(rule("recordings", 30, scope="{groups: [Legal]}")))
    explained = explain(session(40), scoped, AS_OF)

    assert explained.verdict("delete_recordings").verdict == "no_rule"
    assert "outside its scope (groups Legal)" in explained.matched[0].reason


def test_json_has_the_issue_s_fields(policies: PolicySet) -> None:
    document = explain(dataclasses.replace(session(40), session_id=42), policies, AS_OF).to_json()

    assert document["sessionId"] == "42"
    assert [a["action"] for a in document["actions"]] == [
        "delete_recordings",
        "delete_attendees",
        "delete_session",
    ]
    assert set(document["actions"][0]) == {"action", "verdict", "policy", "by", "due", "reason"}
    assert set(document["matched"][0]) == {"name", "kind", "matches", "reason"}
    assert set(document["holds"][0]) == {"id", "kind", "matches", "reason"}
    assert document["actions"][1]["due"].endswith("Z")


def test_a_removal_awaiting_notice_is_not_yet_until_its_organizer_was_told_in_time(
    tmp_path: Path,
) -> None:
    told = load(tmp_path, policy_set(rule("recordings", 30, notice="required")))
    [policy] = told.policies
    noticed = {(2, "delete_recordings"): AS_OF - timedelta(days=10)}

    def notice(record: SessionRecord, action: str, name: str) -> datetime | None:
        assert name == policy.name
        return awaiting_notice(policy, noticed.get((record.session_id, action)), 7, AS_OF)

    explainer = Explainer(told, AS_OF, notice)
    unnoticed = explainer(session(40, session_id=1)).verdict("delete_recordings")
    assert (unnoticed.verdict, unnoticed.policy) == ("not_yet", policy.name)
    assert unnoticed.due == AS_OF + timedelta(days=7)
    assert "awaiting notice" in unnoticed.reason
    in_time = explainer(session(40, session_id=2)).verdict("delete_recordings")
    assert (in_time.verdict, in_time.due) == ("due", AS_OF - timedelta(days=10))
    assert Explainer(told, AS_OF)(session(40)).verdict("delete_recordings").verdict == "due"
