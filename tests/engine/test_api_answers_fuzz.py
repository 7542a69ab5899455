"""A fuzzer of API answers: bent history rows, read by the real scan from the in-process sandbox.

Each example is an account whose sessions may carry a malformed recording, a count or a
duration the API contradicts, or an id another row of another window also carries, under keys of
1 to 25 digits. Whatever is drawn, the scan completes, no bent fact lets a rule remove what
it reads, and every clean session is still planned (so a rule that silences all is caught).
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asgiclient import client_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retention.engine.decide import decide
from retention.engine.inventory import iter_sessions
from retention.engine.scan import scan
from retention.engine.state import open_state_db
from retention.policy import load_policy_set
from retention.sandbox import create_app, generate_account
from retention.sandbox.datafile import load_account
from retention.sandbox.policies import policy_set, rule

NOW = datetime(2026, 11, 23, tzinfo=UTC)
WINDOW_DAYS = 30
KEEP_LARGE = (
    "  - name: large-meetings-kept\n    description: Meetings of 10 or more are kept.\n"
    "    action: retain\n    after: 5y\n    match: {min_attendees: 10}\n"
)
WHOLE = policy_set(rule("sessions", 1), KEEP_LARGE)
PARTS = policy_set(rule("recordings", 1), rule("attendees", 1), KEEP_LARGE)
MALFORMED_RECORDINGS = st.sampled_from(
    [
        "garbage",
        [],
        {},
        {"fileSize": 10},
        {"recordingId": "r", "fileSize": "10"},
        {"recordingId": "", "fileSize": 10},
        {"recordingId": "r", "fileSize": -1},
        {"recordingId": "r", "fileSize": 1.5},
        {"recordingId": 7, "fileSize": 10},
        {"recordingId": "r", "fileSize": 2**70},
    ]
)
BAD_COUNTS = st.sampled_from(["-40", "-1", "forty", "4.5", "", str(2**70), True])


def keys(digits_min: int = 1) -> st.SearchStrategy[int]:
    """Keys of 1 to 25 digits (none with a leading zero: the API's keys are numbers)."""
    return st.integers(digits_min, 25).flatmap(
        lambda n: st.integers(10 ** (n - 1) if n > 1 else 1, 10**n - 1)
    )


@dataclass(frozen=True)
class Drawn:
    """One session of the account and how its rows are bent ("" when not)."""

    session_id: int
    days_ago: int
    attendees: int
    recorded: bool
    bend: str
    raw: Any = None


BENDS = st.sampled_from(["", "", "", "recording", "count", "duration", "twin"])


@st.composite
def sessions(draw: st.DrawFn) -> list[Drawn]:
    ids = draw(st.lists(keys(), min_size=1, max_size=8, unique=True))
    found = []
    for session_id in ids:
        bend = draw(BENDS)
        raw: Any = None
        if bend == "recording":
            raw = draw(MALFORMED_RECORDINGS)
        elif bend == "count":
            raw = draw(BAD_COUNTS)
        elif bend == "duration":
            # 30 minutes long: anything 3 or more minutes off, or negative.
            raw = draw(st.one_of(st.integers(-100_000, 27), st.integers(33, 10**12)))
        found.append(
            Drawn(
                session_id=session_id,
                days_ago=draw(st.integers(2, 50)),
                attendees=draw(st.integers(0, 5)),
                recorded=draw(st.booleans()),
                bend=bend,
                raw=raw,
            )
        )
    return found


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _entries(drawn: list[Drawn], meeting_id: int, twin_meeting: int) -> list[dict[str, Any]]:
    entries = []
    for index, session in enumerate(drawn):
        end = NOW - timedelta(days=session.days_ago)
        entry: dict[str, Any] = {
            "sessionId": session.session_id,
            "meetingId": meeting_id,
            "startTime": _iso(end - timedelta(minutes=30)),
            "endTime": _iso(end),
            "attendeeCount": session.attendees,
        }
        if session.recorded:
            entry["recording"] = {
                "recordingId": f"rec-{index}",
                "recordingName": "r",
                "fileSize": 1000,
            }
        if session.bend == "recording":
            entry["_raw"] = {"recording": session.raw}
        elif session.bend == "count":
            entry["_raw"] = {"numAttendees": session.raw}
        elif session.bend == "duration":
            entry["_raw"] = {"duration": session.raw}
        elif session.bend == "twin":
            # A row of another meeting, more than a window older, carrying this session's id.
            twin_end = end - timedelta(days=WINDOW_DAYS + 5)
            entries.append(
                {
                    "sessionId": 10**30 + index,
                    "meetingId": twin_meeting,
                    "startTime": _iso(twin_end - timedelta(minutes=30)),
                    "endTime": _iso(twin_end),
                    "attendeeCount": 1,
                    "_raw": {"sessionId": str(session.session_id)},
                }
            )
        entries.append(entry)
    return entries


def _account(
    folder: Path, organizer: int, meeting: int, twin: int, entries: list[dict[str, Any]]
) -> Any:
    document = {
        "accountKey": "7000001",
        "groups": [{"groupKey": 10, "groupName": "Sales"}],
        "organizers": [
            {
                "organizerKey": organizer,
                "email": "o@example.com",
                "firstName": "Ana",
                "lastName": "Lee",
                "groupKey": 10,
            }
        ],
        "meetings": [
            {
                "meetingId": key,
                "organizerKey": organizer,
                "subject": "S",
                "meetingType": "scheduled",
            }
            for key in (meeting, twin)
        ],
        "sessions": entries,
    }
    path = folder / "account.json"
    path.write_text(json.dumps(document))
    account = load_account(path)
    account.now = int(NOW.timestamp())
    return account


def _planned(folder: Path, db: Any, policies: str) -> dict[int, set[str]]:
    policy_dir = folder / "policies"
    policy_dir.mkdir(exist_ok=True)
    (policy_dir / "policies.yaml").write_text(policies)
    loaded = load_policy_set([policy_dir])
    return {
        decision.session.session_id: {planned.action for planned in decision.actions}
        for decision in decide(iter_sessions(db), loaded, NOW)
        if decision.actions
    }


async def _scan(folder: Path, account: Any) -> Any:
    db = open_state_db(folder / "state.db")
    async with client_for(create_app(account), folder) as client:
        report = await scan(
            client,
            db,
            now=NOW,
            window_days=WINDOW_DAYS,
            start=NOW - timedelta(days=120),
            settle=timedelta(hours=6),
            full=True,
            concurrency=4,
        )
    assert report.complete, report.incomplete
    return db


@settings(
    max_examples=int(os.environ.get("RETENTION_HYPOTHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=sessions(), organizer=keys(), meeting=keys(), twin=keys())
def test_no_bent_fact_removes_what_it_reads_and_every_clean_session_is_planned(
    drawn: list[Drawn], organizer: int, meeting: int, twin: int
) -> None:
    if twin == meeting:
        twin = meeting + 1
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        account = _account(folder, organizer, meeting, twin, _entries(drawn, meeting, twin))
        db = asyncio.run(_scan(folder, account))
        whole = _planned(folder, db, WHOLE)
        parts = _planned(folder, db, PARTS)
        db.close()

    bent = {session.session_id: session.bend for session in drawn}
    for session_id, bend in bent.items():
        if bend:
            assert session_id not in whole, (bend, whole)
        else:
            assert whole.get(session_id) == {"delete_session"}
        if bend in {"count", "duration", "twin"}:
            assert session_id not in parts, (bend, parts)
        if bend == "recording":
            assert "delete_recordings" not in parts.get(session_id, set())
    # Twins' own ids never appear: their rows carry another session's id.
    assert set(whole) | set(parts) <= set(bent)


def test_the_sessions_the_sandbox_generates_agree_with_their_durations(tmp_path: Path) -> None:
    account = generate_account(
        seed=9, organizers=6, groups=2, days=40, sessions_per_day=12, now=NOW
    )

    async def scanned() -> Any:
        db = open_state_db(tmp_path / "state.db")
        async with client_for(create_app(account), tmp_path) as client:
            report = await scan(
                client,
                db,
                now=NOW,
                window_days=WINDOW_DAYS,
                start=NOW - timedelta(days=41),
                settle=timedelta(hours=6),
                full=True,
                concurrency=4,
            )
        return db, report

    db, report = asyncio.run(scanned())
    records = list(iter_sessions(db))
    db.close()
    assert len(records) > 100
    assert not [p for p in report.problems if "'duration'" in p]
    assert all(r.start_time is not None and r.end_time is not None for r in records)
