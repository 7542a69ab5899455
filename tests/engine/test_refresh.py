"""The re-read before sending, against the in-process sandbox: few calls, fresh facts, verdicts."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asgiclient import client_for

from retention.engine.planitem import PlanItem
from retention.engine.recheck import Rechecker
from retention.engine.refresh import fresh_record, item_windows, refresh_items
from retention.engine.state import open_state_db
from retention.policy import PolicySet, load_policy_set
from retention.sandbox import Account, create_app, generate_account
from retention.sandbox.account import Session
from retention.sandbox.app import move_organizer

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 23, tzinfo=UTC)
POLICIES = """
policies:
  - name: sessions-1d
    description: Every session goes after a day.
    action: delete_session
    after: 1d
holds:
  - id: LIT-5
    reason: Litigation.
    scope: {groups: [%s]}
"""


def item_of(session: Session) -> PlanItem:
    """The plan item a session-delete policy makes for a sandbox session."""
    assert session.end is not None
    return PlanItem(
        organizer_key=session.organizer_key,
        meeting_id=session.meeting_id,
        session_id=session.session_id,
        action="delete_session",
        policy="sessions-1d",
        policy_hash="-",
        also_matched=(),
        start_time=datetime.fromtimestamp(session.start, UTC),
        end_time=datetime.fromtimestamp(session.end, UTC),
        recording_id=None,
        recording_bytes=None,
        attendees=None,
    )


def finished_items(account: Account) -> list[PlanItem]:
    limit = int(NOW.timestamp()) - 86_400
    return [
        item_of(s)
        for s in account.iter_sessions()
        if s.end is not None and s.end <= limit and s.start <= limit
    ]


def policies(tmp_path: Path, held_group: str) -> PolicySet:
    (tmp_path / "p.yaml").write_text(POLICIES % held_group)
    return load_policy_set([tmp_path / "p.yaml"])


async def test_a_10000_item_plan_costs_one_history_call_per_organizer_and_window(
    tmp_path: Path,
) -> None:
    account = generate_account(
        seed=3, organizers=40, groups=4, days=150, sessions_per_day=70, now=NOW
    )
    app = create_app(account)
    items = finished_items(account)[:10_000]
    assert len(items) == 10_000
    db = open_state_db(tmp_path / "state.db")
    async with client_for(app, tmp_path) as client:
        refreshed = await refresh_items(items, client, db, now=NOW, window_days=30)
    calls = Counter(
        entry["path"].rsplit("/", 1)[-1] if "/organizers/" in entry["path"] else entry["path"]
        for entry in app.state.log.entries
    )
    history_calls = calls["historicalMeetings"]
    assert history_calls == len(refreshed.windows)
    assert history_calls <= 40 * 6  # 150 days in 30-day windows, per organizer
    assert calls["/G2M/rest/organizers"] == calls["/G2M/rest/groups"] == 1
    assert refreshed.requests == history_calls + 2
    assert refreshed.unread == {}
    assert all(fresh_record(db, item.session_id) is not None for item in items)
    print(f"\n10,000-item plan: {refreshed.requests} API calls ({history_calls} history windows)")


async def test_the_refresh_sees_a_moved_organizer_and_a_deleted_session(tmp_path: Path) -> None:
    account = generate_account(seed=5, organizers=6, groups=2, days=20, sessions_per_day=6, now=NOW)
    app = create_app(account)
    items = finished_items(account)
    moved_key = items[0].organizer_key
    other_group = next(
        g for g in account.groups.values() if g.group_key != account.organizers[moved_key].group_key
    )
    gone = next(item for item in items if item.organizer_key != moved_key)
    policy_set = policies(tmp_path, other_group.name)
    assert (
        move_organizer(account, {"organizerKey": moved_key, "groupKey": str(other_group.group_key)})
        is None
    )
    account.remove_session(account.sessions[gone.session_id])
    db = open_state_db(tmp_path / "state.db")
    async with client_for(app, tmp_path) as client:
        refreshed = await refresh_items(items, client, db, now=NOW, window_days=30)
    checker = Rechecker(policy_set)
    verdicts = {item.session_id: refreshed.verdict(item, db, checker, NOW) for item in items}
    held = {sid for sid, v in verdicts.items() if v.decision == "skipped_hold"}
    in_held_group = set(account.group_members(other_group.group_key))
    assert moved_key in in_held_group
    assert held == {item.session_id for item in items if item.organizer_key in in_held_group} - {
        gone.session_id
    }
    assert held != {item.session_id for item in items} - {gone.session_id}
    assert {v.reason for sid, v in verdicts.items() if sid in held} == {"now held by hold:LIT-5"}
    assert verdicts[gone.session_id].decision == "skipped_changed"
    assert verdicts[gone.session_id].reason == "the session is no longer in the organizer's history"
    sent = {sid for sid, v in verdicts.items() if v.send}
    assert sent == {item.session_id for item in items} - held - {gone.session_id}


def test_windows_cover_every_item_and_split_only_past_the_window_span() -> None:
    account = generate_account(
        seed=2, organizers=2, groups=1, days=90, sessions_per_day=10, now=NOW
    )
    items = finished_items(account)
    windows = item_windows(items, 30)
    covered = [sid for window in windows for sid in window.session_ids]
    assert sorted(covered) == sorted(item.session_id for item in items)
    for window in windows:
        assert window.end - window.start == timedelta(days=30)
    per_organizer = Counter(window.organizer_key for window in windows)
    assert all(count <= 4 for count in per_organizer.values())


async def test_fresh_facts_the_api_contradicts_are_unknown_and_the_item_is_not_sent(
    tmp_path: Path,
) -> None:
    account = generate_account(seed=5, organizers=3, groups=1, days=20, sessions_per_day=4, now=NOW)
    app = create_app(account)
    items = finished_items(account)
    bent, malformed = items[0], items[1]
    # Since the plan: one row's duration no longer fits its times, another's recording is junk.
    account.sessions[bent.session_id].raw = {"duration": "100000"}
    account.sessions[malformed.session_id].raw = {"recording": "garbage"}
    policy_set = policies(tmp_path, "no-such-group")
    db = open_state_db(tmp_path / "state.db")
    async with client_for(app, tmp_path) as client:
        refreshed = await refresh_items(items, client, db, now=NOW, window_days=30)
    checker = Rechecker(policy_set)
    verdicts = {item.session_id: refreshed.verdict(item, db, checker, NOW) for item in items}

    assert not verdicts[bent.session_id].send
    assert not verdicts[malformed.session_id].send
    assert sum(v.send for v in verdicts.values()) == len(items) - 2
