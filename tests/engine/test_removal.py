"""The removal port on the sandbox (ASGI): removals sent, and what is left read from the
organizer's own history, never from meeting-id history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asgiclient import client_for

from retention.engine.inventory import iter_sessions
from retention.engine.removal import ApiRemovals
from retention.engine.scan import scan
from retention.engine.state import open_state_db
from retention.sandbox import create_app, generate_account

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 23, tzinfo=UTC)


async def test_what_is_left_is_read_from_organizer_history_once_per_organizer_and_day(
    tmp_path: Path,
) -> None:
    account = generate_account(seed=4, organizers=5, groups=1, days=20, sessions_per_day=6, now=NOW)
    app = create_app(account)
    db = open_state_db(tmp_path / "state.db")
    async with client_for(app, tmp_path) as client:
        await scan(
            client,
            db,
            now=NOW,
            window_days=30,
            start=NOW - timedelta(days=21),
            settle=timedelta(hours=6),
            full=True,
            concurrency=4,
        )
        records = [r for r in iter_sessions(db) if r.start_time is not None]
        first, second = records[0], records[1]
        port = ApiRemovals(client, db)
        mark = len(app.state.log.since(0))

        await port.remove("delete_session", first.organizer_key, first.session_id)
        gone = await port.present(
            "delete_session", first.organizer_key, first.meeting_id, first.session_id
        )
        fresh = ApiRemovals(client, db)
        there = await fresh.present(
            "delete_session", second.organizer_key, second.meeting_id, second.session_id
        )
        again = await fresh.present(
            "delete_session", second.organizer_key, second.meeting_id, second.session_id
        )

    assert gone is False
    assert there is True
    assert again is True
    reads = [e["path"] for e in app.state.log.since(mark) if e["method"] == "GET"]
    assert reads, "the port read the account"
    assert all("/organizers/" in path and "historicalMeetings" in path for path in reads)
    assert not any(path.startswith("/G2M/rest/meetings/") for path in reads)
    assert len(reads) == 2, "one read per organizer and day, shared by later questions"
