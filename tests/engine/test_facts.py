"""Trust the API only where it agrees with itself: whole runs on the in-process sandbox.

One session id read with two identities, malformed recordings, contradicted counts and
durations, and keys longer than SQLite's integers: nothing the facts do not prove is removed,
and one bad row never stops the account.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from facts_support import (
    account_of,
    deleted_paths,
    entry,
    full_scan,
    run_once,
    sandbox_app,
    settings_for,
)

from retention.audit.report import render_report
from retention.audit.store import connect_reader
from retention.audit.summary import summarise
from retention.audit.verify import verify_log
from retention.cli.app import cli
from retention.sandbox.policies import policy_set, rule
from retention.service.metrics import Metrics

pytestmark = pytest.mark.anyio
DAYS_5 = timedelta(days=5)
DAYS_40 = timedelta(days=40)
CONTROL = 930001
SESSIONS_1D = policy_set(rule("sessions", 1))


def session_path(organizer: int, session: int) -> str:
    return f"/G2M/rest/organizers/{organizer}/sessions/{session}"


async def test_one_session_id_in_two_windows_is_unknown_and_its_held_session_is_kept(
    tmp_path: Path,
) -> None:
    held = 920001
    sessions = [
        entry(CONTROL, DAYS_5),
        entry(held, DAYS_5),
        # An old row of another meeting of the same organizer carrying the held session's id:
        # read alone, its facts would put the session outside the hold.
        entry(920002, DAYS_40, meeting_id=100003, _raw={"sessionId": str(held)}),
    ]
    hold = "  - id: LIT-1\n    reason: counsel asked\n    meetings: [100001]\n"
    app = sandbox_app(account_of(tmp_path, sessions))
    settings = settings_for(tmp_path, policy_set(rule("sessions", 1), holds=hold))

    ran = await run_once(app, settings)

    assert deleted_paths(app) == []  # the hold covers the control too (same meeting)
    unknown = {entry["sessionId"]: entry["fields"] for entry in ran.plan["unknown"]}
    assert "end_time" in unknown[str(held)]
    (problems,) = ran.rows("SELECT problems FROM sessions WHERE session_id = ?", str(held))
    assert "one session with two identities" in problems[0]
    # Both places are named: the two windows of organizer 1001's history.
    assert problems[0].count("/organizers/1001/historicalMeetings") >= 2
    assert "meeting 100001" in problems[0]
    assert "meeting 100003" in problems[0]


async def test_an_identity_met_in_an_earlier_scan_must_agree_with_a_later_read(
    tmp_path: Path,
) -> None:
    target = 921001
    # Ended two hours ago: the next scan reads its window again (the running lookback).
    account = account_of(tmp_path, [entry(target, timedelta(hours=2))])
    app = sandbox_app(account)
    settings = settings_for(tmp_path, policy_set(rule("sessions", 30)))
    first = await run_once(app, settings)
    assert first.plan["unknown"] == []
    (session,) = account.iter_sessions()
    session.raw = {"meetingId": "100003"}

    second = await run_once(app, settings)
    third = await run_once(app, settings)

    assert [e["sessionId"] for e in second.plan["unknown"]] == [str(target)]
    # It stays unknown while only incremental scans read it: the stored row keeps the conflict.
    assert [e["sessionId"] for e in third.plan["unknown"]] == [str(target)]
    (problems,) = third.rows("SELECT problems FROM sessions")
    assert "meeting 100001" in problems[0]
    assert "meeting 100003" in problems[0]


async def test_mutable_facts_take_the_latest_read(tmp_path: Path) -> None:
    target = 922001
    account = account_of(tmp_path, [entry(target, timedelta(hours=2))])
    app = sandbox_app(account)
    settings = settings_for(tmp_path, policy_set(rule("sessions", 30)))
    await run_once(app, settings)
    (session,) = account.iter_sessions()
    session.raw = {"subject": "Renamed", "numAttendees": "9"}

    second = await run_once(app, settings)

    assert second.plan["unknown"] == []
    assert second.rows("SELECT subject, attendee_count, conflicts FROM sessions") == [
        ("Renamed", 9, None)
    ]


MALFORMED_RECORDINGS = ["garbage", [], {}, {"fileSize": 10}, {"recordingId": "r", "fileSize": "10"}]


async def test_a_malformed_recording_is_unknown_for_every_rule_that_reads_it(
    tmp_path: Path,
) -> None:
    bent = {
        940001 + index: entry(940001 + index, DAYS_5, _raw={"recording": recording})
        for index, recording in enumerate(MALFORMED_RECORDINGS)
    }
    sessions = [entry(CONTROL, DAYS_5), *bent.values()]
    no_recording = (
        "  - name: no-recording-1d\n    description: Sessions without a recording go.\n"
        "    action: delete_session\n    after: 1d\n    match: {has_recording: false}\n"
    )
    policies = policy_set(no_recording, rule("recordings", 1))
    app = sandbox_app(account_of(tmp_path, sessions))

    ran = await run_once(app, settings_for(tmp_path, policies))

    assert deleted_paths(app) == [session_path(1001, CONTROL)]
    unknown = {int(e["sessionId"]): e["fields"] for e in ran.plan["unknown"]}
    assert set(unknown) == set(bent)
    assert all("recording" in fields for fields in unknown.values())
    stored = dict(ran.rows("SELECT session_id, recording_unknown FROM sessions"))
    assert stored == {str(CONTROL): 0, **{str(key): 1 for key in bent}}
    # The plan and /metrics count what was kept unknown, per fact.
    assert ran.plan["summary"]["unknown_by"] == {"recording": len(bent)}
    metrics = Metrics()
    metrics.set_unknown(ran.plan["summary"]["unknown_by"])
    assert f'retention_sessions_unknown{{reason="recording"}} {len(bent)}.0' in (
        metrics.render().decode()
    )
    metrics.set_unknown({})
    assert 'retention_sessions_unknown{reason="recording"} 0.0' in metrics.render().decode()


async def test_a_malformed_recording_keeps_its_session_from_a_plain_session_rule(
    tmp_path: Path,
) -> None:
    sessions = [entry(CONTROL, DAYS_5), entry(941001, DAYS_5, _raw={"recording": "garbage"})]
    app = sandbox_app(account_of(tmp_path, sessions))

    ran = await run_once(app, settings_for(tmp_path, SESSIONS_1D))

    assert deleted_paths(app) == [session_path(1001, CONTROL)]
    (intent,) = ran.audit("SELECT data FROM events WHERE event = 'intent'")
    assert '"recording_ids":[]' in intent[0]


async def test_counts_and_durations_the_api_contradicts_are_unknown(tmp_path: Path) -> None:
    negative, huge, below_zero, off_by_3 = 950001, 950002, 950003, 950004
    sessions = [
        entry(CONTROL, DAYS_5, attendeeCount=40),
        entry(negative, DAYS_5, attendeeCount=40, _raw={"numAttendees": "-40"}),
        entry(huge, DAYS_5, _raw={"duration": "100000"}),
        entry(below_zero, DAYS_5, _raw={"duration": "-5"}),
        # 30 minutes long: 33 is off by more than a rounding minute.
        entry(off_by_3, DAYS_5, _raw={"duration": "33"}),
        # 32 is within two minutes: known.
        entry(950005, DAYS_5, _raw={"duration": "32"}),
    ]
    few = (
        "  - name: small-meetings-kept\n    description: Meetings of 10 or more are kept.\n"
        "    action: retain\n    after: 1y\n    match: {min_attendees: 10}\n"
    )
    app = sandbox_app(account_of(tmp_path, sessions))

    ran = await run_once(app, settings_for(tmp_path, policy_set(rule("sessions", 1), few)))

    assert sorted(deleted_paths(app)) == [session_path(1001, 950005)]
    unknown = {int(e["sessionId"]) for e in ran.plan["unknown"]}
    assert {huge, below_zero, off_by_3} <= unknown
    problems = dict(ran.rows("SELECT session_id, problems FROM sessions"))
    assert "is out of range ('-40')" in problems[str(negative)]
    assert "is 100000 minutes" in problems[str(huge)]
    assert "is -5 minutes" in problems[str(below_zero)]
    assert problems[str(CONTROL)] is None


BIG_ORGANIZER = 98765432109876543210  # 20 digits: beyond 2^63-1
BIG_MEETING = 123456789012345678901  # 21 digits
BIG_SESSION = 1234567890123456789012345  # 25 digits


async def test_a_due_session_of_a_twenty_digit_organizer_is_removed_and_recorded_under_its_key(
    tmp_path: Path,
) -> None:
    sessions = [
        entry(CONTROL, DAYS_5),
        entry(BIG_SESSION, DAYS_5, meeting_id=BIG_MEETING),
        # A key no store takes (41 digits): that row is dropped and reported, nothing else.
        entry(CONTROL + 1, DAYS_5, _raw={"sessionId": "9" * 41}),
    ]
    account = account_of(
        tmp_path,
        sessions,
        organizers=(1001, BIG_ORGANIZER),
        meetings={100001: 0, BIG_MEETING: 1},
    )
    app = sandbox_app(account)

    ran = await run_once(app, settings_for(tmp_path, SESSIONS_1D))

    assert sorted(deleted_paths(app)) == sorted(
        [session_path(1001, CONTROL), session_path(BIG_ORGANIZER, BIG_SESSION)]
    )
    recorded = ran.audit(
        "SELECT organizer_key, meeting_id, session_id, outcome FROM events"
        " WHERE event = 'outcome' AND CAST(organizer_key AS TEXT) = ?",
        str(BIG_ORGANIZER),
    )
    assert recorded == [(str(BIG_ORGANIZER), str(BIG_MEETING), str(BIG_SESSION), "deleted")]
    assert ran.rows("SELECT organizer_key FROM organizers ORDER BY length(organizer_key)") == [
        ("1001",),
        (str(BIG_ORGANIZER),),
    ]


def _recorded(session_id: int, ended_ago: timedelta) -> dict[str, object]:
    recording = {"recordingId": f"rec-{session_id}", "recordingName": "r", "fileSize": 4096}
    return entry(session_id, ended_ago, recording=recording)


@pytest.mark.parametrize(
    ("kind", "action"),
    [("recordings", "delete_recordings"), ("sessions", "delete_session")],
)
async def test_a_removal_the_api_did_not_make_is_recorded_as_reappeared_and_decided_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, action: str
) -> None:
    target = 970001
    app = sandbox_app(account_of(tmp_path, [_recorded(target, timedelta(days=2))]))
    # Every DELETE answers 204 and removes nothing.
    app.state.controls.delete_status = 204
    policies = policy_set(rule(kind, 1))
    settings = settings_for(tmp_path, policies)

    first = await run_once(app, settings)
    (deleted,) = first.audit("SELECT seq FROM events WHERE outcome = 'deleted'")
    await full_scan(app, settings)  # `retention inventory --full`: the recording is still there
    soon = await run_once(app, settings)  # within the grace: the API may be catching up
    assert soon.plan["items"] == []
    assert soon.audit("SELECT seq FROM events WHERE event = 'reappeared'") == []

    # A full scan that starts more than the grace (1h) after the removal still sees it.
    await full_scan(app, settings, later=timedelta(hours=2))
    later = await run_once(app, settings)

    ((recorded, session, data),) = later.audit(
        "SELECT action, session_id, data FROM events WHERE event = 'reappeared'"
    )
    assert (recorded, session) == (action, str(target))
    assert f'"deleted_seq":{deleted[0]}' in data
    assert '"recording_id":"rec-970001"' in data
    assert [item["sessionId"] for item in later.plan["items"]] == [str(target)]
    assert len(deleted_paths(app)) == 2
    # Two `deleted` outcomes, the first named by the reappearance: not `deleted_twice`.
    report = verify_log(settings.state_dir / "audit.db")
    assert report.clean, report.findings
    # The report lists it under "Needing attention"; explain says it reappeared.
    conn = connect_reader(settings.state_dir / "audit.db")
    page = render_report(summarise(conn), report, generated="now")
    conn.close()
    attention = page[page.index('id="attention"') : page.index("<h2>Refusals")]
    assert f'data-session="{target}"' in attention
    monkeypatch.setenv("RETENTION_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("RETENTION_POLICY_DIR", str(settings.policy_dir))
    monkeypatch.delenv("RETENTION_CONFIG", raising=False)
    explained = CliRunner().invoke(cli, ["explain", str(target), "--format", "json"])
    assert explained.exit_code == 0, explained.output
    (event,) = json.loads(explained.output)["reappeared"]
    assert (event["action"], event["deleted_seq"]) == (action, deleted[0])
    text = CliRunner().invoke(cli, ["explain", str(target)]).output
    assert f"reappeared {action}" in text


async def test_a_grace_of_zero_records_no_reappearance(tmp_path: Path) -> None:
    target = 971001
    app = sandbox_app(account_of(tmp_path, [_recorded(target, timedelta(days=2))]))
    app.state.controls.delete_status = 204
    settings = settings_for(tmp_path, policy_set(rule("recordings", 1)), reappear_grace="0")
    await run_once(app, settings)
    await full_scan(app, settings, later=timedelta(hours=2))

    again = await run_once(app, settings)

    assert again.plan["items"] == []
    assert again.audit("SELECT seq FROM events WHERE event = 'reappeared'") == []
    assert len(deleted_paths(app)) == 1
