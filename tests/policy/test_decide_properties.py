"""Properties of the decision engine over random sessions, rules and holds.

Expected outcomes come from a deliberately plain oracle written here: a delete rule matches only
when every value it reads is known and fits; a retain rule or a hold may match unless a known
value rules it out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from retention.engine.decide import decide
from retention.engine.records import SessionRecord
from retention.policy import Hold, Policy, PolicySet, parse_duration

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PROFILE = settings.get_profile("policy")
DURATIONS = ["1d", "30d", "90d", "1m", "6m", "1y", "3y"]
PATTERNS = ["(?i)board", "acme", "^W"]
ORGANIZERS = [(1001, "a@x.com"), (1002, "b@x.com"), (1003, None)]
GROUPS = [(1, "Sales"), (2, "HR"), (None, None), (1, None)]


def _session(number: int, values: dict[str, Any]) -> SessionRecord:
    organizer_key, email = values["organizer"]
    group_key, group_name = values["group"]
    end = values["end"]
    return SessionRecord(
        session_id=number,
        meeting_id=values["meeting_id"],
        organizer_key=organizer_key,
        organizer_email=email if values["email_known"] else None,
        group_key=group_key,
        group_name=group_name,
        subject=values["subject"],
        meeting_type=values["meeting_type"],
        start_time=None if end is None else end - timedelta(hours=1),
        end_time=end,
        attendee_count=values["attendee_count"],
        recording_id=values["recording_id"],
    )


SESSION_VALUES = st.fixed_dictionaries(
    {
        "organizer": st.sampled_from(ORGANIZERS),
        "email_known": st.booleans(),
        "group": st.sampled_from(GROUPS),
        "end": st.none() | st.integers(0, 2000 * 24).map(lambda h: AS_OF - timedelta(hours=h)),
        "meeting_id": st.integers(100, 103),
        "subject": st.sampled_from([None, "Weekly", "Board review", "acme demo"]),
        "meeting_type": st.sampled_from([None, "scheduled", "recurring", "immediate"]),
        "attendee_count": st.none() | st.integers(0, 4),
        "recording_id": st.sampled_from([None, "rec"]),
    }
)
SESSIONS = st.lists(SESSION_VALUES, min_size=1, max_size=8).map(
    lambda found: [_session(number, values) for number, values in enumerate(found)]
)


def subset(values: list[Any]) -> st.SearchStrategy[Any]:
    return st.lists(st.sampled_from(values), min_size=1, max_size=2, unique=True)


SCOPE = st.fixed_dictionaries(
    {},
    optional={
        "groups": subset([1, 2, "Sales", "hr"]),
        "organizers": subset([1001, "A@x.com", "b@x.com"]),
        "exclude_organizers": subset([1002, "a@x.com"]),
    },
)
MATCH = st.fixed_dictionaries(
    {},
    optional={
        "meeting_types": subset(["scheduled", "recurring", "immediate"]),
        "subject": st.sampled_from(PATTERNS),
        "subject_not": st.sampled_from(PATTERNS),
        "has_recording": st.booleans(),
        "min_attendees": st.integers(0, 3),
    },
)


def rules(actions: list[str]) -> st.SearchStrategy[list[Policy]]:
    raw = st.fixed_dictionaries(
        {"action": st.sampled_from(actions), "after": st.sampled_from(DURATIONS)},
        optional={"scope": SCOPE, "match": MATCH},
    )
    return st.lists(raw, min_size=1, max_size=6).map(
        lambda found: [
            Policy.model_validate({**values, "name": f"rule-{index}", "description": "generated"})
            for index, values in enumerate(found)
        ]
    )


def policy_set_of(policies: list[Policy], holds: list[Hold] = ()) -> PolicySet:  # type: ignore[assignment]
    return PolicySet(
        policies=tuple(policies),
        holds=tuple(holds),
        files=(),
        content_hashes={},
        digest="",
        warnings=(),
        locations={},
    )


def _org(entry: int | str, s: SessionRecord, lenient: bool) -> bool:
    if isinstance(entry, int):
        return s.organizer_key == entry
    return (lenient and s.organizer_email is None) or (
        s.organizer_email is not None and s.organizer_email.lower() == entry.lower()
    )


def _group(entry: int | str, s: SessionRecord, lenient: bool) -> bool:
    if isinstance(entry, int):
        return (lenient and s.group_key is None) or s.group_key == entry
    return (lenient and s.group_name is None) or (
        s.group_name is not None and s.group_name.lower() == entry.lower()
    )


def oracle_matches(policy: Policy, s: SessionRecord, lenient: bool) -> bool:
    """Strict (delete rules): unknown never fits. Lenient (retain): unknown always fits."""
    scope, match = policy.scope, policy.match
    if scope is not None:
        parts = []
        if scope.groups:
            parts.append(any(_group(g, s, lenient) for g in scope.groups))
        if scope.organizers:
            parts.append(any(_org(o, s, lenient) for o in scope.organizers))
        if parts and not any(parts):
            return False
        if scope.exclude_organizers and any(
            _org(o, s, not lenient) for o in scope.exclude_organizers
        ):
            return False
    if match is None:
        return True

    def known(value: object, test: bool) -> bool:
        return lenient if value is None else test

    subject = s.subject or ""
    return all(
        [
            match.meeting_types is None
            or known(s.meeting_type, s.meeting_type in match.meeting_types),
            match.subject is None or known(s.subject, bool(re.search(match.subject, subject))),
            match.subject_not is None
            or known(s.subject, not re.search(match.subject_not, subject)),
            match.has_recording is None or (s.recording_id is not None) == match.has_recording,
            match.min_attendees is None
            or known(s.attendee_count, (s.attendee_count or 0) >= match.min_attendees),
        ]
    )


def old_enough(policy: Policy, s: SessionRecord, as_of: datetime = AS_OF) -> bool:
    after = parse_duration(policy.after.iso)
    delta = relativedelta(years=after.years, months=after.months, days=after.days)
    return s.end_time is not None and s.end_time <= as_of - delta


def not_a_noop(action: str, s: SessionRecord) -> bool:
    if action == "delete_recordings":
        return s.recording_id is not None
    if action == "delete_attendees":
        return s.attendee_count is not None and s.attendee_count > 0
    return True


DELETES = ["delete_recordings", "delete_attendees", "delete_session"]
ALL_ACTIONS = [*DELETES, "retain"]
STRONGER = {"delete_session": {"delete_session"}}


@PROFILE
@given(SESSIONS, rules(ALL_ACTIONS), st.data())
def test_held_session_is_never_acted_on(
    records: list[SessionRecord], policies: list[Policy], data: st.DataObject
) -> None:
    held = data.draw(st.lists(st.sampled_from(records), min_size=1, unique=True))
    hold = Hold.model_validate(
        {"id": "H", "reason": "r", "sessions": [record.session_id for record in held]}
    )
    for decision in decide(records, policy_set_of(policies, [hold]), AS_OF):
        if decision.session in held:
            assert decision.actions == ()
            assert "H" in decision.holds
            assert all(block.by == "hold:H" for block in decision.blocked[:1])


@PROFILE
@given(SESSIONS, rules(ALL_ACTIONS))
def test_every_action_is_old_enough_known_and_caused_by_a_matching_rule(
    records: list[SessionRecord], policies: list[Policy]
) -> None:
    by_name = {policy.name: policy for policy in policies}
    for decision in decide(records, policy_set_of(policies), AS_OF):
        for planned in decision.actions:
            cause = by_name[planned.policy]
            assert cause.action == planned.action
            assert oracle_matches(cause, decision.session, lenient=False)
            assert old_enough(cause, decision.session)
            assert not_a_noop(planned.action, decision.session)


@PROFILE
@given(SESSIONS, rules(ALL_ACTIONS))
def test_no_action_while_a_retain_rule_may_still_apply(
    records: list[SessionRecord], policies: list[Policy]
) -> None:
    retains = [policy for policy in policies if policy.action == "retain"]
    for decision in decide(records, policy_set_of(policies), AS_OF):
        running = [
            policy
            for policy in retains
            if oracle_matches(policy, decision.session, lenient=True)
            and not old_enough(policy, decision.session)
        ]
        if running:
            assert decision.actions == ()


@PROFILE
@given(SESSIONS, rules(DELETES))
def test_action_is_never_weaker_than_a_matching_due_delete_rule(
    records: list[SessionRecord], policies: list[Policy]
) -> None:
    for decision in decide(records, policy_set_of(policies), AS_OF):
        planned = {p.action for p in decision.actions}
        for policy in policies:
            s = decision.session
            if (
                oracle_matches(policy, s, lenient=False)
                and old_enough(policy, s)
                and not_a_noop(policy.action, s)
            ):
                assert policy.action in planned or "delete_session" in planned
        if "delete_session" in planned:
            assert len(planned) == 1


@PROFILE
@given(SESSIONS, rules(ALL_ACTIONS), st.randoms(use_true_random=False))
def test_decisions_do_not_depend_on_rule_or_hold_order(
    records: list[SessionRecord], policies: list[Policy], rng: Any
) -> None:
    holds = [
        Hold.model_validate({"id": "H1", "reason": "r", "meetings": [100]}),
        Hold.model_validate({"id": "H2", "reason": "r", "subject": "(?i)board"}),
    ]
    shuffled_policies, shuffled_holds = list(policies), list(holds)
    rng.shuffle(shuffled_policies)
    rng.shuffle(shuffled_holds)
    first = list(decide(records, policy_set_of(policies, holds), AS_OF))
    second = list(decide(records, policy_set_of(shuffled_policies, shuffled_holds), AS_OF))
    assert first == second
