"""A policy change as the difference of two plans on one inventory: added, dropped, blocking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import records
from plans import load_folder, plan_for

from retention.cli.render_compare import MARKDOWN_ITEMS, change_document, change_markdown
from retention.engine.compare import compare_plans
from retention.engine.plan import Plan
from retention.engine.records import SessionRecord
from retention.sandbox.policies import BOARD_7Y, policy_set, rule

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)


def ended_days_ago(session_id: int, days: int, subject: str = "Weekly sync") -> SessionRecord:
    return records.ended(session_id, at=AS_OF - timedelta(days=days), subject=subject)


SESSIONS = [
    ended_days_ago(1, 25),  # a recording due at 20 days, not at 30
    ended_days_ago(2, 40),  # a recording due under both
    ended_days_ago(3, 100, subject="Board review"),  # a whole session, until board-7y keeps it
    ended_days_ago(4, 100),  # a whole session under both
    ended_days_ago(5, 5),  # nothing due
]


def plan_of(tmp_path: Path, name: str, text: str, sessions: list[SessionRecord]) -> Plan:
    return plan_for(sessions, load_folder(tmp_path / name, text), AS_OF, plan_id=name)


def keys(entries: list[dict[str, object]]) -> set[tuple[object, object]]:
    return {(entry["sessionId"], entry["action"]) for entry in entries}


def test_the_change_adds_and_drops_removals_per_policy_and_retain_rules_start_blocking(
    tmp_path: Path,
) -> None:
    base = plan_of(
        tmp_path, "base", policy_set(rule("recordings", 30), rule("sessions", 90)), SESSIONS
    )
    change = plan_of(
        tmp_path,
        "change",
        policy_set(rule("recordings", 20), rule("sessions", 90), BOARD_7Y),
        SESSIONS,
    )

    found = compare_plans(base, change)

    assert keys(found.added) == {("1", "delete_recordings")}
    assert keys(found.dropped) == {("3", "delete_session")}
    # Session 2's recording moves from recordings-30d to recordings-20d: neither added nor dropped.
    assert found.by_policy == {
        "recordings-20d": {"added": 1, "dropped": 0},
        "sessions-90d": {"added": 0, "dropped": 1},
    }
    assert [(b["sessionId"], b["action"], b["by"]) for b in found.started] == [
        ("3", "delete_session", "retain:board-7y")
    ]
    assert found.stopped == []
    assert found.started[0]["startTime"] == "2026-08-14T23:00:00Z"

    back = compare_plans(change, base)

    assert keys(back.added) == keys(found.dropped)
    assert keys(back.dropped) == keys(found.added)
    assert [b["by"] for b in back.stopped] == ["retain:board-7y"]
    assert back.started == []


def test_the_same_policies_make_no_change_and_a_selection_counts_only_its_policies(
    tmp_path: Path,
) -> None:
    text = policy_set(rule("recordings", 30), rule("sessions", 90))
    same = compare_plans(
        plan_of(tmp_path, "a", text, SESSIONS), plan_of(tmp_path, "b", text, SESSIONS)
    )
    assert same.empty
    assert same.document() == {
        "added": [],
        "dropped": [],
        "by_policy": {},
        "blocking": {"started": [], "stopped": []},
    }

    base = plan_of(tmp_path, "c", text, SESSIONS)
    change = plan_of(
        tmp_path, "d", policy_set(rule("recordings", 20), rule("sessions", 90), BOARD_7Y), SESSIONS
    )
    only = compare_plans(base, change, ["sessions-90d"])

    assert keys(only.added) == set()
    assert keys(only.dropped) == {("3", "delete_session")}
    assert list(only.by_policy) == ["sessions-90d"]


def test_markdown_has_a_heading_a_table_per_policy_and_caps_each_list(tmp_path: Path) -> None:
    many = [ended_days_ago(100 + n, 25) for n in range(MARKDOWN_ITEMS + 7)]
    base = plan_of(tmp_path, "base", policy_set(rule("recordings", 30)), many)
    change = plan_of(tmp_path, "change", policy_set(rule("recordings", 20)), many)

    document = change_document(compare_plans(base, change), "main/policies", change)
    text = change_markdown(document)

    lines = text.splitlines()
    added = MARKDOWN_ITEMS + 7
    assert lines[0] == f"### Retention policy change: {added} removals added, 0 dropped"
    assert "| recordings-20d | 27 | 0 |" in lines
    assert "`main/policies`" in text
    assert sum(line.startswith("- delete_recordings of session") for line in lines) == (
        MARKDOWN_ITEMS
    )
    assert "- … and 7 more" in lines
    assert "Dropped removals" not in text
