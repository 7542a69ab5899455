"""Explain over random sessions, rules and holds: it agrees with the plan, and what it says
becomes due on a date is due (or subsumed) when explained again at that date."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from explain_checks import check_agreement
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plans import plan_for

from retention.engine.explain import Explainer
from retention.engine.records import SessionRecord
from retention.policy import Hold, Policy, PolicySet

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
# `make test` tries 100 examples of each property; `make torture` tries 2,000.
EXAMPLES = settings(
    max_examples=int(os.environ.get("RETENTION_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def record(number: int, values: dict[str, Any]) -> SessionRecord:
    end = values["end"]
    return SessionRecord(
        session_id=number,
        meeting_id=values["meeting_id"],
        organizer_key=1001,
        organizer_email=values["email"],
        group_key=None,
        group_name=values["group"],
        subject=values["subject"],
        meeting_type="scheduled",
        start_time=None if end is None else end - timedelta(hours=1),
        end_time=end,
        attendee_count=values["attendees"],
        recording_id=values["recording"],
    )


SESSIONS = st.lists(
    st.fixed_dictionaries(
        {
            "email": st.sampled_from([None, "a@x.com", "b@x.com"]),
            "group": st.sampled_from([None, "Sales", "Legal"]),
            "end": st.none()
            | st.integers(0, 1500 * 24).map(lambda hours: AS_OF - timedelta(hours=hours)),
            "meeting_id": st.integers(100, 102),
            "subject": st.sampled_from([None, "Weekly", "Board review"]),
            "attendees": st.none() | st.integers(0, 3),
            "recording": st.sampled_from([None, "rec"]),
        }
    ),
    min_size=1,
    max_size=6,
).map(lambda found: [record(number, values) for number, values in enumerate(found)])
RULES = st.lists(
    st.fixed_dictionaries(
        {
            "action": st.sampled_from(
                ["delete_recordings", "delete_attendees", "delete_session", "retain"]
            ),
            "after": st.sampled_from(["30d", "1m", "6m", "1y", "2y"]),
        },
        optional={
            "scope": st.sampled_from([{"groups": ["Legal"]}, {"organizers": ["a@x.com"]}]),
            "match": st.sampled_from(
                [{"subject": "(?i)board"}, {"min_attendees": 1}, {"has_recording": True}]
            ),
        },
    ),
    min_size=1,
    max_size=5,
).map(
    lambda found: [
        Policy.model_validate({**values, "name": f"rule-{index}", "description": "generated"})
        for index, values in enumerate(found)
    ]
)
HOLDS = st.lists(
    st.sampled_from(
        [
            {"id": "M", "reason": "r", "meetings": [100]},
            {"id": "S", "reason": "r", "scope": {"groups": ["Sales"]}, "expires": "2026-09-30"},
            {"id": "B", "reason": "r", "subject": "(?i)board", "expires": "2027-03-31"},
            {"id": "X", "reason": "r", "all": True, "expires": "2026-01-31"},
        ]
    ),
    max_size=2,
    unique_by=lambda hold: hold["id"],
).map(lambda found: [Hold.model_validate(hold) for hold in found])


def policy_set_of(policies: list[Policy], holds: list[Hold]) -> PolicySet:
    return PolicySet(
        policies=tuple(policies),
        holds=tuple(holds),
        files=(),
        content_hashes={policy.name: "h" for policy in policies},
        digest="",
        warnings=(),
        locations={},
    )


POLICY_SETS = st.builds(policy_set_of, RULES, HOLDS)


@EXAMPLES
@given(SESSIONS, POLICY_SETS)
def test_explain_agrees_with_the_plan(sessions: list[SessionRecord], policy_set: PolicySet) -> None:
    plan = plan_for(sessions, policy_set, AS_OF)
    explain = Explainer(policy_set, AS_OF)

    check_agreement(plan, {session.session_id: explain(session) for session in sessions})


@EXAMPLES
@given(SESSIONS, POLICY_SETS)
def test_an_action_said_to_become_due_on_a_date_is_due_then(
    sessions: list[SessionRecord], policy_set: PolicySet
) -> None:
    explain = Explainer(policy_set, AS_OF)
    for session in sessions:
        for verdict in explain(session).actions:
            if verdict.due is None:
                continue
            # Due and subsumed verdicts give the past moment they became due.
            assert verdict.verdict in {"not_yet", "held", "retained", "due", "subsumed"}
            if verdict.verdict in {"due", "subsumed"}:
                assert verdict.due <= AS_OF, verdict
                continue
            later = Explainer(policy_set, verdict.due)(session).verdict(verdict.action)
            assert later.verdict in {"due", "subsumed"}, (verdict, later)
            before = verdict.due - timedelta(seconds=1)
            earlier = Explainer(policy_set, before)(session).verdict(verdict.action)
            assert earlier.verdict not in {"due", "subsumed"}, (verdict, earlier)
