"""The scan against the in-process sandbox: completeness, prefilter, watermarks, failing closed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiclient import client_for

from retention.engine.inventory import count_summary, iter_sessions, session_problems
from retention.engine.scan import scan
from retention.engine.state import open_state_db
from retention.sandbox import Account, create_app, generate_account
from retention.sandbox.account import Recording

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 23, tzinfo=UTC)
DAYS = 60
START = NOW - timedelta(days=DAYS + 1)
SETTLE = timedelta(hours=6)
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def account(organizers: int = 60, groups: int = 3, now: datetime = NOW) -> Account:
    return generate_account(
        seed=4, organizers=organizers, groups=groups, days=DAYS, sessions_per_day=15, now=now
    )


def finished(acct: Account, until: datetime = NOW) -> dict[int, Any]:
    """Sessions history can show at `until`: started and ended by then (computed from the data)."""
    limit = int(until.timestamp())
    now = acct.now or limit
    return {
        s.session_id: s
        for s in acct.iter_sessions()
        if s.start <= limit and s.start <= now and (s.end is None or s.end <= now)
    }


async def run_scan(
    app: ASGIApp, tmp_path: Path, *, now: datetime = NOW, full: bool = False, **options: Any
):
    db = open_state_db(tmp_path / "state.db")
    async with client_for(app, tmp_path, **options) as client:
        report = await scan(
            client,
            db,
            now=now,
            window_days=30,
            start=START,
            settle=SETTLE,
            full=full,
            concurrency=8,
        )
    return db, report


def api_paths(app: Any, since: int = 0) -> list[str]:
    return [e["path"] for e in app.state.log.since(since) if e["path"].startswith("/G2M/rest")]


async def test_full_scan_stores_exactly_the_sessions_history_shows(tmp_path):
    acct = account()
    app = create_app(acct)
    db, report = await run_scan(app, tmp_path)
    expected = finished(acct)
    records = {r.session_id: r for r in iter_sessions(db)}
    assert report.complete
    assert set(records) == set(expected)
    recorded = [s for s in expected.values() if s.recording is not None]
    totals = count_summary(db).total
    assert totals.sessions == len(expected)
    assert totals.recordings == len(recorded)
    assert totals.recording_bytes == sum(s.recording.file_size for s in recorded)
    assert totals.attendee_lists == sum(1 for s in expected.values() if s.attendee_count > 0)
    assert totals.organizers == len(acct.organizers)
    sample = recorded[0]
    record = records[sample.session_id]
    assert record.recording_id == sample.recording.recording_id
    assert record.recording_bytes == sample.recording.file_size
    assert record.start_time == datetime.fromtimestamp(sample.start, UTC)
    assert record.subject == acct.meetings[sample.meeting_id].subject


async def test_prefilter_calls_only_organizers_that_met_in_a_window(tmp_path):
    acct = account()
    app = create_app(acct)
    _db, report = await run_scan(app, tmp_path)
    paths = api_paths(app)
    big = [key for key in acct.groups if len(acct.group_members(key)) > 50]
    small = [key for key in acct.groups if key not in big]
    assert big, "the generated account has one group over the 50-organizer limit"
    windows = [
        (START, START + timedelta(days=30)),
        (START + timedelta(days=30), START + timedelta(days=60)),
        (START + timedelta(days=60), NOW),
    ]
    met = 0
    for group_key in small:
        for organizer_key in acct.group_members(group_key):
            for window_start, window_end in windows:
                met += any(
                    window_start.timestamp() <= s.start <= window_end.timestamp()
                    for s in finished(acct).values()
                    if s.organizer_key == organizer_key
                )
    unfiltered = sum(len(acct.group_members(key)) for key in big) * len(windows)
    organizer_calls = [p for p in paths if p.startswith("/G2M/rest/organizers/")]
    group_calls = [p for p in paths if p.endswith("/historicalMeetings") and "/groups/" in p]
    assert len(group_calls) == len(small) * len(windows)
    assert len(organizer_calls) == met + unfiltered
    assert report.windows_skipped == sum(len(acct.group_members(k)) for k in small) * 3 - met


async def test_next_day_incremental_scan_reads_only_organizers_with_new_or_unsettled_meetings(
    tmp_path,
):
    acct = account(organizers=40, groups=2)
    app = create_app(acct)
    yesterday = NOW - timedelta(days=1)
    await run_scan(app, tmp_path, now=yesterday)
    before = len(app.state.log.entries)
    db, report = await run_scan(app, tmp_path, now=NOW)
    paths = api_paths(app, before)
    mark, settling_from = yesterday.timestamp(), (yesterday - SETTLE).timestamp()
    # Worked out from the account: new since the watermark, not yet ended at the last scan, or
    # ended within the settle margin before it without a recording.
    to_read = {
        s.organizer_key
        for s in finished(acct).values()
        if s.start >= mark
        or (s.start >= mark - 86_400 and s.end is not None and s.end > mark)
        or (s.end is not None and s.end > settling_from and s.recording is None)
    }
    met_new_day = {s.organizer_key for s in finished(acct).values() if s.start >= mark}
    organizer_calls = [p for p in paths if p.startswith("/G2M/rest/organizers/")]
    group_calls = [p for p in paths if "/groups/" in p]
    assert report.complete
    assert len(group_calls) == len(acct.groups)
    assert len(organizer_calls) == len(to_read)
    assert met_new_day <= to_read
    assert {r.session_id for r in iter_sessions(db)} == set(finished(acct))


async def test_recording_that_appears_within_the_settle_margin_is_picked_up_next_day(tmp_path):
    acct = account(organizers=40, groups=2)
    app = create_app(acct)
    yesterday = NOW - timedelta(days=1)
    late = max(
        (s for s in finished(acct, yesterday).values() if s.recording is None and s.end),
        key=lambda s: s.end,
    )
    assert late.end > (yesterday - SETTLE).timestamp(), "the account has a session to settle"
    await run_scan(app, tmp_path, now=yesterday)
    late.recording = Recording("rec-late", "late", 5_000_000)
    db, report = await run_scan(app, tmp_path, now=NOW)
    stored = {r.session_id: r for r in iter_sessions(db)}
    assert report.complete
    assert stored[late.session_id].recording_id == "rec-late"
    assert stored[late.session_id].recording_bytes == 5_000_000


async def test_meeting_running_at_the_last_scan_is_stored_by_the_next(tmp_path):
    acct = account(organizers=40, groups=2)
    app = create_app(acct)
    yesterday = NOW - timedelta(days=1)
    running = next(s for s in finished(acct).values() if s.start >= yesterday.timestamp() and s.end)
    acct.now = running.start + 60  # the sandbox's clock: the meeting is still running
    db, _ = await run_scan(app, tmp_path, now=datetime.fromtimestamp(acct.now, UTC))
    assert running.session_id not in {r.session_id for r in iter_sessions(db)}
    acct.now = int(NOW.timestamp())
    db, report = await run_scan(app, tmp_path, now=NOW)
    assert report.complete
    assert running.session_id in {r.session_id for r in iter_sessions(db)}


def failing(app: ASGIApp, fragment: str) -> ASGIApp:
    """The sandbox, except that requests whose path contains `fragment` get 503."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and fragment in scope["path"]:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"unavailable"})
            return
        await app(scope, receive, send)

    return wrapped


async def test_window_failing_after_retries_is_reported_and_not_marked_scanned(tmp_path):
    acct = account(organizers=30, groups=1)
    app = create_app(acct)
    victim = next(s.organizer_key for s in finished(acct).values())
    db, report = await run_scan(
        failing(app, f"/organizers/{victim}/historicalMeetings"), tmp_path, max_attempts=3
    )
    assert not report.complete
    assert {w.organizer_key for w in report.incomplete} == {victim}
    rows = db.execute("SELECT organizer_key, scanned_through FROM watermarks").fetchall()
    marks = {int(key): through for key, through in rows}
    assert victim not in marks
    assert len(marks) == len(acct.organizers) - 1
    assert not any(r.organizer_key == victim for r in iter_sessions(db))
    # The next scan, with the API healthy, reads the missing windows and nothing is lost.
    db, report = await run_scan(app, tmp_path)
    assert report.complete
    assert {r.session_id for r in iter_sessions(db)} == set(finished(acct))


async def test_failing_group_window_falls_back_to_each_organizer(tmp_path):
    acct = account(organizers=30, groups=1)
    app = create_app(acct)
    db, report = await run_scan(failing(app, "/groups/"), tmp_path, max_attempts=2)
    assert report.complete
    assert {r.session_id for r in iter_sessions(db)} == set(finished(acct))


async def test_full_scan_drops_sessions_no_longer_present(tmp_path):
    acct = account(organizers=10, groups=1)
    app = create_app(acct)
    await run_scan(app, tmp_path)
    gone = next(iter(finished(acct).values()))
    acct.remove_session(gone)
    db, report = await run_scan(app, tmp_path, full=True)
    assert report.complete
    ids = {r.session_id for r in iter_sessions(db)}
    assert gone.session_id not in ids
    assert ids == set(finished(acct))


def rewriting(app: ASGIApp, fragment: str, rewrite: Callable[[list[Any]], None]) -> ASGIApp:
    """The sandbox, with the JSON body of matching responses passed through `rewrite`."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or fragment not in scope["path"]:
            await app(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                held.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            payload = json.loads(b"".join(chunks))
            rewrite(payload)
            body = json.dumps(payload).encode()
            headers = [(k, v) for k, v in held["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return wrapped


async def test_malformed_fields_are_stored_as_unknown_with_their_problems(tmp_path):
    acct = account(organizers=5, groups=5)
    app = create_app(acct)
    victim = max(
        acct.organizers,
        key=lambda k: sum(1 for s in finished(acct).values() if s.organizer_key == k),
    )
    spoiled: dict[str, Any] = {}

    def spoil(items: list[Any]) -> None:
        if len(items) >= 2 and not spoiled:
            items[0]["numAttendees"] = "lots"
            items[0]["startTime"] = "last tuesday"
            spoiled["kept"] = int(items[0]["sessionId"])
            spoiled["lost"] = int(items[1]["sessionId"])
            del items[1]["sessionId"]

    app = rewriting(app, f"/organizers/{victim}/historicalMeetings", spoil)
    db, report = await run_scan(app, tmp_path)
    records = {r.session_id: r for r in iter_sessions(db)}
    kept = records[spoiled["kept"]]
    assert kept.attendee_count is None
    assert kept.start_time is None
    problems = dict(session_problems(db))[spoiled["kept"]]
    assert any("numAttendees" in p for p in problems)
    assert any("startTime" in p for p in problems)
    assert spoiled["lost"] not in records
    assert (
        db.execute("SELECT COUNT(*) FROM scan_problems WHERE field = 'sessionId'").fetchone()[0]
        == 1
    )
    assert any("sessionId" in p for p in report.problems)
