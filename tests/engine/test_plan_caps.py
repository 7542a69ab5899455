"""A cap refuses the policy that overruns it, not the plan; --limit keeps the oldest items."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records
from plans import load_folder

from retention.engine.admission import Admission, admit
from retention.engine.awaiting import Noticed
from retention.engine.caps import run_cap_violation
from retention.engine.plan import Plan, limit_plan
from retention.engine.records import SessionRecord
from retention.policy import PolicySet
from retention.sandbox.policies import policy_set, rule

NOW = datetime(2026, 11, 23, tzinfo=UTC)
POLICIES = policy_set(
    rule("sessions", 30, limits="{max_deletions: 2}"),
    rule("recordings", "7d"),
    rule("attendees", 60, limits="{max_deletions: 1}"),
)


def record(session_id: int, *, ended_days_ago: int) -> SessionRecord:
    return records.ended(session_id, at=NOW - timedelta(days=ended_days_ago))


@pytest.fixture
def policy_set(tmp_path: Path) -> PolicySet:
    return load_folder(tmp_path, POLICIES)


# Five sessions due under sessions-30d (cap 2); two of them old enough for attendees-60d (cap 1).
SESSIONS = [record(n, ended_days_ago=days) for n, days in [(1, 70), (2, 40), (3, 71), (4, 45)]]
SESSIONS.append(record(5, ended_days_ago=35))
SESSIONS.append(record(6, ended_days_ago=3))  # nothing due


def plan(
    policy_set: PolicySet,
    sessions: Iterable[SessionRecord] = SESSIONS,
    *,
    refused: dict[str, str] | None = None,
    noticed: Noticed | None = None,
    **args: object,
) -> Plan:
    listed = list(sessions)
    admission = Admission(
        policy_set, NOW, unknown=refused or {}, noticed=noticed or {}, notice_days=7
    )
    return admit(
        lambda: listed,
        admission,
        plan_id="p",
        created_at=NOW,
        **args,  # type: ignore[arg-type]
    )


def test_a_policy_over_its_cap_is_refused_and_another_policys_removals_take_its_place(
    policy_set: PolicySet,
) -> None:
    result = plan(policy_set)
    assert result.refused == {
        "sessions-30d": "cap:sessions-30d",
        "attendees-60d": "cap:attendees-60d",
    }
    # the recordings that the refused session deletes would have covered stay planned
    assert [(i.session_id, i.action, i.policy) for i in result.items] == [
        (3, "delete_recordings", "recordings-7d"),
        (1, "delete_recordings", "recordings-7d"),
        (4, "delete_recordings", "recordings-7d"),
        (2, "delete_recordings", "recordings-7d"),
        (5, "delete_recordings", "recordings-7d"),
    ]
    blocked = {(b["sessionId"], b["action"], b["by"]) for b in result.blocked}
    assert blocked == {
        *((str(n), "delete_session", "cap:sessions-30d") for n in (1, 2, 3, 4, 5)),
        ("1", "delete_attendees", "cap:attendees-60d"),
        ("3", "delete_attendees", "cap:attendees-60d"),
    }
    assert result.document()["refused_policies"] == [
        {"policy": "attendees-60d", "by": "cap:attendees-60d"},
        {"policy": "sessions-30d", "by": "cap:sessions-30d"},
    ]


def test_each_refusal_names_policy_count_and_cap_and_says_what_to_do(policy_set: PolicySet) -> None:
    refusals = plan(policy_set).cap_refusals
    events = [r.as_event() for r in refusals]
    assert [(e["policy"], e["reason"], e["cap"], e["count"], e["limit"]) for e in events] == [
        ("sessions-30d", "cap", "max_deletions", 5, 2),
        ("attendees-60d", "cap", "max_deletions", 2, 1),
    ]
    hint = refusals[0].hint()
    assert "limits.max_deletions" in hint
    assert "retention plan --policy sessions-30d --limit N" in hint


def test_policies_within_their_caps_are_planned_as_decided(policy_set: PolicySet) -> None:
    result = plan(policy_set, SESSIONS[:2])
    assert result.refused == {}
    assert result.cap_refusals == []
    assert [(i.session_id, i.action) for i in result.items] == [
        (1, "delete_session"),
        (2, "delete_session"),
    ]


def test_a_policy_refused_for_an_unknown_name_is_blocked_by_that_name(
    policy_set: PolicySet,
) -> None:
    result = plan(policy_set, SESSIONS[:2], refused={"sessions-30d": "unknown:Finance"})
    assert {(b["sessionId"], b["by"]) for b in result.blocked} == {
        ("1", "unknown:Finance"),
        ("2", "unknown:Finance"),
    }
    assert {(i.session_id, i.action, i.policy) for i in result.items} == {
        (1, "delete_recordings", "recordings-7d"),
        (1, "delete_attendees", "attendees-60d"),
        (2, "delete_recordings", "recordings-7d"),
    }


def test_selected_policy_within_its_cap_after_limit(policy_set: PolicySet) -> None:
    whole = plan(policy_set, SESSIONS, selected=["sessions-30d"])
    assert whole.refused == {"sessions-30d": "cap:sessions-30d"}
    assert whole.items == []
    batch = limit_plan(
        plan(policy_set, SESSIONS[:2], selected=["sessions-30d"]),
        1,
    )
    assert [(i.session_id, i.action) for i in batch.items] == [(1, "delete_session")]
    assert (batch.limit, batch.left_out) == (1, 1)
    assert batch.summary()["left_out"] == 1
    assert batch.document()["limit"] == 1


def test_limit_keeps_the_first_items_oldest_session_first(policy_set: PolicySet) -> None:
    limited = limit_plan(plan(policy_set), 2)
    assert [i.session_id for i in limited.items] == [3, 1]
    assert limited.left_out == 3
    assert limit_plan(plan(policy_set), 10).left_out == 0


def test_the_run_cap_still_refuses_the_whole_run(policy_set: PolicySet) -> None:
    result = plan(policy_set)
    violation = run_cap_violation(result.items, max_per_run=4)
    assert violation is not None
    assert (violation.policy, violation.selected, violation.as_event()["reason"]) == (
        None,
        5,
        "global_cap",
    )
    assert run_cap_violation(result.items, max_per_run=5) is None


NOTICED_CAP = """
policies:
  - name: sessions-30d
    description: Sessions go after 30 days, once their organizer was told, two a run at most.
    action: delete_session
    after: 30d
    notice: required
    limits: {max_deletions: 2}
"""


def test_a_cap_counts_only_what_the_run_would_remove_not_what_awaits_notice(
    tmp_path: Path,
) -> None:
    noticed_cap = load_folder(tmp_path / "noticed", NOTICED_CAP)
    # Five sessions due; only 1 and 2 were noticed long enough ago to go now.
    told = {(n, "delete_session"): NOW - timedelta(days=10) for n in (1, 2)}

    result = plan(noticed_cap, noticed=told)
    assert result.refused == {}
    assert [(i.session_id, i.action) for i in result.items] == [
        (1, "delete_session"),
        (2, "delete_session"),
    ]
    assert {(b["sessionId"], b["by"]) for b in result.blocked} == {
        (str(n), "notice") for n in (3, 4, 5)
    }

    # All five told in time: the five due sessions are over the cap of two, the policy refused.
    unheld = plan(
        noticed_cap, noticed={(n, "delete_session"): NOW - timedelta(days=10) for n in range(1, 6)}
    )
    assert unheld.refused == {"sessions-30d": "cap:sessions-30d"}
    assert unheld.items == []

    # One more noticed in time makes three it would remove: over its cap, refused on its own.
    told[(3, "delete_session")] = NOW - timedelta(days=8)
    over = plan(noticed_cap, noticed=told)
    assert over.refused == {"sessions-30d": "cap:sessions-30d"}
    assert [(e["count"], e["limit"]) for e in (r.as_event() for r in over.cap_refusals)] == [(3, 2)]
