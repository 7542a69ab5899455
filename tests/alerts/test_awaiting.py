"""`notice: required` in the plan and at send time, on in-memory policy sets and items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from retention.engine.awaiting import awaiting_notice, notice_gate
from retention.engine.planitem import PlanItem
from retention.policy import load_policy_set

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
POLICIES = """
policies:
  - name: told-first
    description: Recordings go after 30 days, once their organizer was told.
    action: delete_recordings
    after: 30d
    notice: required
  - name: plain
    description: Attendee lists go after 30 days.
    action: delete_attendees
    after: 30d
"""


def _item(policy: str, action: str) -> PlanItem:
    ended = NOW - timedelta(days=40)
    return PlanItem(
        organizer_key=1,
        meeting_id=2,
        session_id=3,
        action=action,
        policy=policy,
        policy_hash="h",
        also_matched=(),
        start_time=ended - timedelta(hours=1),
        end_time=ended,
        recording_id="r",
        recording_bytes=10,
        attendees=2,
    )


def test_a_removal_waits_the_notice_days_after_its_notice(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICIES)
    policy_set = load_policy_set([tmp_path])
    told, plain = policy_set.policies

    assert awaiting_notice(told, None, 7, NOW) == NOW + timedelta(days=7)
    assert awaiting_notice(told, NOW - timedelta(days=6), 7, NOW) == NOW + timedelta(days=1)
    assert awaiting_notice(told, NOW - timedelta(days=7), 7, NOW) is None
    assert awaiting_notice(plain, None, 7, NOW) is None


def test_send_time_gate_skips_what_was_not_noticed(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(POLICIES)
    policy_set = load_policy_set([tmp_path])
    item = _item("told-first", "delete_recordings")

    unnoticed = notice_gate(policy_set, {}, 7)(item, NOW)
    recent = notice_gate(policy_set, {item.key: NOW - timedelta(days=1)}, 7)(item, NOW)
    in_time = notice_gate(policy_set, {item.key: NOW - timedelta(days=8)}, 7)(item, NOW)

    assert unnoticed is not None
    assert unnoticed.startswith("not noticed")
    assert recent is not None
    assert in_time is None
    assert notice_gate(policy_set, {}, 7)(_item("plain", "delete_attendees"), NOW) is None


def test_a_policy_hash_without_notice_is_unchanged(tmp_path: Path) -> None:
    plain = POLICIES.split("  - name: plain")[1]
    (tmp_path / "a.yaml").write_text("policies:\n  - name: plain" + plain)
    before = load_policy_set([tmp_path]).content_hash("plain")
    # The hash of a policy written before `notice` existed: the same document, no notice key.
    from retention.canonical import canonical_hash  # noqa: PLC0415

    policy = load_policy_set([tmp_path]).policies[0]
    dumped = policy.model_dump(mode="json", by_alias=True)
    del dumped["notice"]
    assert before == canonical_hash(dumped)
