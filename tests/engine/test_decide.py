"""The decision engine, one principle at a time, on policy files loaded from disk."""

from __future__ import annotations

import itertools
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records

from retention.engine.decide import Blocked, Decision, Planned, decide
from retention.engine.records import SessionRecord
from retention.policy import PolicySet, load_policy_set

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = records.ended(
    at=datetime(2025, 1, 10, 10, 0, tzinfo=UTC),
    meeting_id=10,
    organizer_email="Ana@Example.com",
    group_key=4411,
    meeting_type="scheduled",
    attendee_count=5,
    recording_id="rec-1",
    recording_bytes=1000,
)


def session(**changes: object) -> SessionRecord:
    return replace(BASE, **changes)  # type: ignore[arg-type]


def rule(name: str, action: str, after: str, extra: str = "") -> str:
    text = f"  - name: {name}\n    description: d\n    action: {action}\n    after: {after}\n"
    return text + "".join(f"    {line}\n" for line in extra.splitlines())


def load(tmp_path: Path, policies: str = "", holds: str = "") -> PolicySet:
    text = (f"policies:\n{policies}" if policies else "") + (f"holds:\n{holds}" if holds else "")
    path = tmp_path / "set.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy_set([path])


def one(policy_set: PolicySet, record: SessionRecord = BASE, as_of: datetime = AS_OF) -> Decision:
    (decision,) = decide([record], policy_set, as_of)
    return decision


def test_due_delete_rule_plans_its_action_and_names_the_rule(tmp_path: Path) -> None:
    decision = one(load(tmp_path, rule("rec", "delete_recordings", "90d")))
    assert decision.actions == (Planned("delete_recordings", "rec", ()),)
    assert decision.reason is None


def test_session_not_old_enough_is_not_acted_on_and_says_when(tmp_path: Path) -> None:
    record = session(end_time=datetime(2026, 5, 1, 8, 30, tzinfo=UTC))
    decision = one(load(tmp_path, rule("rec", "delete_recordings", "90d")), record)
    assert decision.actions == ()
    assert decision.due_at == datetime(2026, 7, 30, 8, 30, tzinfo=UTC)
    assert decision.reason == "not old enough: first due 2026-07-30 08:30 UTC"


def test_age_is_exact_at_the_boundary(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("rec", "delete_recordings", "90d"))
    on_time = session(end_time=AS_OF - timedelta(days=90))
    late_by_a_second = session(end_time=AS_OF - timedelta(days=90) + timedelta(seconds=1))
    assert one(policies, on_time).actions
    assert not one(policies, late_by_a_second).actions


def test_calendar_month_at_month_end_waits_for_the_next_month(tmp_path: Path) -> None:
    record = session(end_time=datetime(2026, 1, 31, 10, 0, tzinfo=UTC))
    policies = load(tmp_path, rule("rec", "delete_recordings", "1m"))
    early = one(policies, record, datetime(2026, 2, 28, 23, 0, tzinfo=UTC))
    assert early.actions == ()
    assert early.due_at == datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    on_time = one(policies, record, datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
    assert on_time.actions


def test_session_delete_subsumes_attendee_and_recording_deletes(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all-3y", "delete_session", "1y")
        + rule("att", "delete_attendees", "30d")
        + rule("rec", "delete_recordings", "30d"),
    )
    decision = one(policies)
    assert decision.actions == (Planned("delete_session", "all-3y", ("att", "rec")),)


def test_attendee_and_recording_deletes_are_both_planned(tmp_path: Path) -> None:
    policies = load(
        tmp_path, rule("rec", "delete_recordings", "30d") + rule("att", "delete_attendees", "1y")
    )
    assert [(p.action, p.policy) for p in one(policies).actions] == [
        ("delete_attendees", "att"),
        ("delete_recordings", "rec"),
    ]


def test_no_recording_means_no_recording_delete(tmp_path: Path) -> None:
    decision = one(
        load(tmp_path, rule("rec", "delete_recordings", "30d")), session(recording_id=None)
    )
    assert decision.actions == ()
    assert decision.reason == "nothing to delete: no recording"
    assert not decision.unknown


def test_zero_attendees_means_no_attendee_list_delete(tmp_path: Path) -> None:
    decision = one(
        load(tmp_path, rule("att", "delete_attendees", "30d")), session(attendee_count=0)
    )
    assert decision.actions == ()
    assert decision.reason == "nothing to delete: no attendees"


def test_unknown_attendee_count_is_reported_not_planned(tmp_path: Path) -> None:
    decision = one(
        load(tmp_path, rule("att", "delete_attendees", "30d")), session(attendee_count=None)
    )
    assert decision.actions == ()
    assert decision.unknown
    assert decision.unknown_fields == ("attendee_count",)


def test_unknown_end_time_never_leads_to_deletion(tmp_path: Path) -> None:
    decision = one(load(tmp_path, rule("all", "delete_session", "30d")), session(end_time=None))
    assert decision.actions == ()
    assert decision.unknown_fields == ("end_time",)
    assert decision.reason == "unknown end_time: a policy may apply, so nothing is deleted"


def test_subject_condition_on_unknown_subject_does_not_match_a_delete_rule(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("x", "delete_session", "30d", 'match: {subject: "sync"}'))
    assert one(policies).actions
    decision = one(policies, session(subject=None))
    assert decision.actions == ()
    assert decision.unknown_fields == ("subject",)


def test_subject_not_excludes_matching_subjects(tmp_path: Path) -> None:
    policies = load(
        tmp_path, rule("x", "delete_session", "30d", 'match: {subject_not: "(?i)BOARD"}')
    )
    assert one(policies).actions
    assert not one(policies, session(subject="Board review")).actions


def test_min_attendees_on_unknown_count_does_not_match(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("x", "delete_session", "30d", "match: {min_attendees: 3}"))
    assert not one(policies, session(attendee_count=2)).actions
    assert one(policies, session(attendee_count=3)).actions
    assert one(policies, session(attendee_count=None)).unknown_fields == ("attendee_count",)


def test_weaker_action_still_planned_when_a_stronger_rule_is_unknown(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all", "delete_session", "30d", 'match: {subject: "sync"}')
        + rule("rec", "delete_recordings", "30d"),
    )
    decision = one(policies, session(subject=None))
    assert [p.action for p in decision.actions] == ["delete_recordings"]
    assert decision.unknown_fields == ("subject",)


def test_scope_keys_match_keys_and_names_match_case_insensitively(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("by-key", "delete_recordings", "30d", "scope: {organizers: [1001]}")
        + rule("by-email", "delete_attendees", "30d", "scope: {organizers: [ana@EXAMPLE.com]}")
        + rule("by-group", "delete_session", "30d", "scope: {groups: [sales]}")
        + rule("other-key", "delete_session", "30d", "scope: {groups: [1001]}"),
    )
    assert one(policies).matched == ("by-email", "by-group", "by-key")


def test_exclude_organizers_removes_them_from_scope(tmp_path: Path) -> None:
    scope = "scope: {groups: [Sales], exclude_organizers: [ana@example.com]}"
    policies = load(tmp_path, rule("x", "delete_session", "30d", scope))
    assert one(policies).actions == ()
    assert one(policies, session(organizer_key=1002, organizer_email="bo@example.com")).actions


def test_unknown_group_does_not_match_a_delete_rule_scoped_by_group(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("x", "delete_session", "30d", "scope: {groups: [Sales]}"))
    decision = one(policies, session(group_key=None, group_name=None))
    assert decision.actions == ()
    assert decision.unknown_fields == ("group",)


def test_retain_blocks_deletion_until_its_period_ends(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all", "delete_session", "30d")
        + rule("keep", "retain", "2y", "scope: {groups: [Sales]}"),
    )
    decision = one(policies)
    until = datetime(2027, 1, 10, 10, 0, tzinfo=UTC)
    assert decision.actions == ()
    assert decision.blocked == (Blocked("delete_session", "all", "retain:keep", until),)
    assert decision.reason == "retained by keep until 2027-01-10 10:00 UTC"
    later = one(policies, BASE, until)
    assert later.actions == (Planned("delete_session", "all", ("keep",)),)


def test_longest_retain_period_wins(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all", "delete_session", "30d")
        + rule("keep-2y", "retain", "2y")
        + rule("keep-3y", "retain", "3y"),
    )
    decision = one(policies)
    assert [b.by for b in decision.blocked] == ["retain:keep-3y", "retain:keep-2y"]
    assert decision.reason == "retained by keep-3y until 2028-01-10 10:00 UTC"


def test_retain_rule_with_unknown_subject_keeps_the_session(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all", "delete_session", "30d")
        + rule("board", "retain", "10y", 'match: {subject: "(?i)board"}'),
    )
    assert one(policies).actions
    assert one(policies, session(subject=None)).blocked[0].by == "retain:board"


def test_hold_blocks_every_action_even_past_retain(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all", "delete_session", "30d"),
        "  - {id: LIT-1, reason: case, sessions: [1]}\n",
    )
    decision = one(policies)
    assert decision.actions == ()
    assert decision.holds == ("LIT-1",)
    assert decision.blocked == (Blocked("delete_session", "all", "hold:LIT-1", None),)
    assert decision.reason == "held by hold:LIT-1"


def test_hold_by_meeting_covers_every_session_of_the_meeting(tmp_path: Path) -> None:
    policies = load(
        tmp_path, rule("all", "delete_session", "30d"), "  - {id: H, reason: r, meetings: [10]}\n"
    )
    decisions = list(decide([BASE, session(session_id=2), session(meeting_id=11)], policies, AS_OF))
    assert [bool(d.actions) for d in decisions] == [False, False, True]


def test_hold_filter_needs_scope_subject_and_dates_together(tmp_path: Path) -> None:
    hold = (
        "  - id: H\n    reason: r\n    scope: {groups: [Sales]}\n    subject: (?i)acme\n"
        "    started_between: [2025-01-10, 2025-01-10]\n"
    )
    policies = load(tmp_path, rule("all", "delete_session", "30d"), hold)
    acme = session(subject="ACME demo")
    assert one(policies, acme).holds == ("H",)
    assert one(policies, session(subject="Other")).holds == ()
    assert one(policies, replace(acme, group_name="HR", group_key=1)).holds == ()
    late = replace(acme, start_time=datetime(2025, 1, 11, 0, 0, tzinfo=UTC))
    assert one(policies, late).holds == ()
    last_second = replace(acme, start_time=datetime(2025, 1, 10, 23, 59, 59, tzinfo=UTC))
    assert one(policies, last_second).holds == ("H",)


def test_hold_with_unknown_start_time_covers_the_session(tmp_path: Path) -> None:
    hold = "  - {id: H, reason: r, started_between: [2020-01-01, 2020-12-31]}\n"
    policies = load(tmp_path, rule("all", "delete_session", "30d"), hold)
    assert one(policies).holds == ()
    assert one(policies, session(start_time=None)).holds == ("H",)


def test_hold_lapses_at_the_end_of_its_expiry_day(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all", "delete_session", "30d"),
        "  - {id: H, reason: r, all: true, expires: 2026-06-01}\n",
    )
    last_moment = datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC)
    assert one(policies, BASE, last_moment).holds == ("H",)
    after = one(policies, BASE, datetime(2026, 6, 2, tzinfo=UTC))
    assert after.holds == ()
    assert after.actions


def test_disabled_policy_is_ignored(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("all", "delete_session", "30d", "enabled: false"))
    decision = one(policies)
    assert decision.actions == ()
    assert decision.reason == "no delete policy applies"


def test_decide_streams_without_holding_decisions(tmp_path: Path) -> None:
    policies = load(
        tmp_path, rule("all", "delete_session", "30d") + rule("rec", "delete_recordings", "30d")
    )

    def endless() -> Iterator[SessionRecord]:
        for number in itertools.count():
            yield session(session_id=number, organizer_key=number % 50)

    decisions = decide(endless(), policies, AS_OF)
    for _ in itertools.islice(decisions, 2_000):  # compiled patterns, caches, free lists
        pass
    tracemalloc.start()
    for _ in itertools.islice(decisions, 10_000):
        pass
    retained = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    # Keeping even one small object per decision would retain 480 KB or more.
    assert retained < 100_000


def test_each_decision_names_the_delete_scopes_its_session_is_surely_in(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("sales", "delete_session", "30d", "scope: {groups: [Sales]}")
        + rule("everyone", "delete_recordings", "30d")
        + rule("keep", "retain", "1y"),
    )
    records = [
        BASE,
        session(group_name="HR", group_key=2),
        session(group_name=None, group_key=None),
    ]
    assert [d.in_scope for d in decide(records, policies, AS_OF)] == [
        ("everyone", "sales"),
        ("everyone",),
        ("everyone",),
    ]


def test_naive_as_of_is_refused(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("all", "delete_session", "30d"))
    with pytest.raises(ValueError, match="aware"):
        list(decide([BASE], policies, datetime(2026, 1, 1)))


@pytest.mark.timeout(10)
def test_catastrophic_pattern_on_a_long_subject_returns_with_the_right_answer(
    tmp_path: Path,
) -> None:
    # With backtracking this pattern takes exponential time on a subject that ends in a mismatch.
    policies = load(
        tmp_path,
        rule("words", "delete_session", "30d", 'match: {subject: "(?i)^(\\\\w+\\\\s?)*$"}'),
        '  - {id: H-1, reason: r, subject: "(?i)^(\\\\w+\\\\s?)*$"}\n',
    )
    words = "word " * 20_000
    assert len(words) == 100_000
    assert one(policies, session(subject=words + "!")).actions == ()
    assert one(policies, session(subject=words + "!")).holds == ()
    assert one(policies, session(subject=words.strip())).holds == ("H-1",)
    assert one(policies, session(subject=words.strip())).matched == ("words",)
