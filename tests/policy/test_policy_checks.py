"""Checks of a policy set against the inventory: unknown names, rules matching nothing, lapses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import records

from retention.engine.decide import decide
from retention.engine.policy_checks import check_against_inventory, lapsed_holds
from retention.policy import load_policy_set

TEXT = """policies:
  - name: sales-recordings
    description: d
    action: delete_recordings
    after: 30d
    scope: {groups: [Sales, Marketing], organizers: [ana@example.com, 9999]}
  - name: hr-interviews
    description: d
    action: delete_session
    after: 30d
    match: {subject: (?i)interview}
holds:
  - {id: H-1, reason: r, sessions: [1]}
  - {id: H-2, reason: r, meetings: [77], expires: 2026-01-31}
"""
SESSION = records.ended(
    at=datetime(2025, 1, 1, 10, tzinfo=UTC),
    meeting_id=10,
    group_key=4411,
    subject="Weekly",
    meeting_type="scheduled",
    recording_id="r",
    recording_bytes=None,
)


def test_unknown_names_are_errors_and_idle_rules_are_warnings(tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(TEXT, encoding="utf-8")
    problems = check_against_inventory(
        load_policy_set([path]),
        [SESSION],
        known_groups=[(4411, "sales")],
        known_organizers=[(1001, "Ana@Example.com")],
    )
    assert [str(p) for p in problems] == [
        f"{path}:6:29: unknown group 'Marketing': the inventory has no such group"
        " (hint: check the spelling, or run a scan if the group is new)",
        f"{path}:6:71: unknown organizer 9999: the inventory has no such organizer"
        " (hint: check the spelling, or run a scan if the organizer is new)",
        f"{path}:7:5: warning: policy 'hr-interviews' matches no session in the inventory"
        " (hint: check its scope and conditions against `retention inventory`)",
        f"{path}:14:6: warning: hold 'H-2' covers no session in the inventory"
        " (hint: check the ids and filters it lists)",
    ]


def test_hold_past_its_expiry_day_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(TEXT, encoding="utf-8")
    policy_set = load_policy_set([path])
    assert lapsed_holds(policy_set, datetime(2026, 1, 31, 23, 59, tzinfo=UTC)) == []
    (lapsed,) = lapsed_holds(policy_set, datetime(2026, 2, 1, tzinfo=UTC))
    assert (lapsed.line, lapsed.severity) == (14, "warning")
    assert lapsed.message == "hold 'H-2' expired on 2026-01-31: it no longer protects anything"


def test_retain_rule_on_an_unknown_subject_matches_as_decide_applies_it(tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(
        "policies:\n"
        "  - {name: board, description: d, action: retain, after: 10y,"
        " match: {subject: (?i)board}}\n"
        "  - {name: board-delete, description: d, action: delete_session, after: 30d,"
        " match: {subject: (?i)board}}\n",
        encoding="utf-8",
    )
    unknown_subject = replace(SESSION, subject=None)
    problems = check_against_inventory(
        load_policy_set([path]), [unknown_subject], [(4411, "Sales")], [(1001, "ana@example.com")]
    )
    # The retain rule keeps the session (an unknown value may keep, never remove), so it is in
    # use; the delete rule cannot act on an unknown subject, so it matches nothing.
    assert [p.message for p in problems] == [
        "policy 'board-delete' matches no session in the inventory"
    ]


def test_hold_filter_with_unknown_subject_covers_the_session(tmp_path: Path) -> None:
    path = tmp_path / "set.yaml"
    path.write_text(
        """holds:\n  - {id: H-9, reason: r, subject: "(?i)merger"}\n""", encoding="utf-8"
    )
    policy_set = load_policy_set([path])
    assert check_against_inventory(policy_set, [replace(SESSION, subject=None)], [], []) == []
    (idle,) = check_against_inventory(policy_set, [SESSION], [], [])
    assert idle.message == "hold 'H-9' covers no session in the inventory"


QUOTED_KEYS = """holds:
  - id: LIT-SALES
    reason: r
    scope: {groups: ["4411"]}
  - id: BY-KEY
    reason: r
    scope: {groups: [4411]}
"""


def test_a_quoted_key_is_a_name_as_the_matcher_reads_it_so_it_is_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "holds.yaml"
    path.write_text(QUOTED_KEYS, encoding="utf-8")
    policy_set = load_policy_set([path])
    problems = check_against_inventory(
        policy_set,
        [SESSION],
        known_groups=[(4411, "sales")],
        known_organizers=[(1001, "ana@example.com")],
    )
    assert sorted(str(p) for p in problems) == [
        f"{path}:2:5: warning: hold 'LIT-SALES' covers no session in the inventory"
        " (hint: check the ids and filters it lists)",
        f"{path}:4:22: unknown group '4411': the inventory has no such group"
        " (hint: write the group key without quotes (4411): quoted, it is a name)",
    ]
    # the matcher agrees: quoted, the hold covers nothing; unquoted, the session is held
    held = decide([SESSION], policy_set, datetime(2026, 1, 1, tzinfo=UTC))
    assert [d.holds for d in held] == [("BY-KEY",)]
