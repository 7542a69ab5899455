"""Bad API data: rows the API should never send are not deleted, and each one is reported."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from support import invoke_retention

from .conftest import Service, iso, session_entry

OLD = timedelta(days=20)
FUTURE = iso(datetime.now(UTC) + timedelta(days=300)).replace("Z", ".+0000")
RECENT = datetime.now(UTC) - timedelta(hours=2)

CONTROL = 900001
DUPLICATED = 900010
# Each bent session and what its history rows carry instead of the truth (all ended 20 days ago).
UNKNOWN_TIMES: dict[int, tuple[str, dict[str, Any]]] = {
    900002: ("end_time", {"_raw": {"endTime": ""}}),
    900003: ("start_time", {"_raw": {"startTime": "2026-13-45T99:00:00.+0000"}}),
    900004: ("end_time", {"_omit": ["endTime"]}),
    # A start after now contradicts the history it is listed in: both times become unknown.
    900006: ("end_time", {"_raw": {"startTime": FUTURE}}),
    # An end after now is a contradiction (history lists ended sessions): unknown, not "not yet".
    900005: ("end_time", {"_raw": {"endTime": FUTURE}}),
}
DROPPED = {900007: {"_raw": {"sessionId": "../900001"}}, 900008: {"_omit": ["sessionId"]}}
IMPOSTOR = 900009


def bad_account(account_file: Callable[[list[dict[str, Any]]], Path]) -> Path:
    sessions = [session_entry(CONTROL, OLD), session_entry(DUPLICATED, OLD)]
    sessions += [session_entry(key, OLD, **bent) for key, (_, bent) in UNKNOWN_TIMES.items()]
    sessions += [session_entry(key, OLD, **bent) for key, bent in DROPPED.items()]
    # Served just before 900010's own row: a recent session claiming 900010's id, so the
    # last row listed (the old one) would make 900010 look due if the conflict went unseen.
    recent = {
        "sessionId": str(DUPLICATED),
        "startTime": iso(RECENT - timedelta(minutes=30)).replace("Z", ".+0000"),
        "endTime": iso(RECENT).replace("Z", ".+0000"),
    }
    sessions.append(session_entry(IMPOSTOR, OLD + timedelta(hours=1), _raw=recent))
    return account_file(sessions)


def test_only_sessions_whose_eligibility_is_proven_are_deleted_and_the_rest_reported(
    service: Callable[..., Service], account_file: Callable[[list[dict[str, Any]]], Path]
) -> None:
    deployed = service("--data", str(bad_account(account_file)))

    planned = deployed.cli("plan", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert [item["sessionId"] for item in plan["items"]] == [str(CONTROL)]
    unknown = {int(entry["sessionId"]): entry["fields"] for entry in plan["unknown"]}
    expected = {key: [field] for key, (field, _) in UNKNOWN_TIMES.items()}
    assert unknown == {**expected, DUPLICATED: ["end_time"]}
    logged = [json.loads(line) for line in planned.stderr.splitlines() if line.startswith("{")]
    problems = [e["problem"] for e in logged if e.get("problem")]
    assert any("'sessionId'" in p and "item skipped" in p for p in problems), problems
    assert sum("item skipped" in p for p in problems) >= len(DROPPED)
    with sqlite3.connect(deployed.state_dir / "state.db") as db:
        stored = db.execute(
            "SELECT problems FROM sessions WHERE session_id = ?", [DUPLICATED]
        ).fetchone()
    # The impostor's recent times lie outside the old window it was listed in.
    assert "outside the window asked for" in stored[0]

    table = deployed.cli("plan")
    assert table.returncode == 0, table.stderr
    assert f"{len(UNKNOWN_TIMES) + 1} sessions have unknown fields" in table.stdout

    run = deployed.cli("run", "--yes")
    assert run.returncode == 0, run.stderr
    deletes = [r["path"] for r in deployed.deletes()]
    assert deletes == [f"/G2M/rest/organizers/1001/sessions/{CONTROL}"]
    assert not any(".." in r["path"] for r in deployed.server.requests())
    left = set(deployed.server.state()["session_ids"])
    never_deleted = {*UNKNOWN_TIMES, *DROPPED, IMPOSTOR, DUPLICATED}
    assert never_deleted <= left
    assert CONTROL not in left


def test_a_data_file_with_a_bad_override_is_refused_naming_the_entry(
    account_file: Callable[[list[dict[str, Any]]], Path],
) -> None:
    path = account_file([session_entry(CONTROL, OLD, _raw=["not", "an", "object"])])
    result = invoke_retention("sandbox", "--port", "0", "--data", str(path))
    assert result.returncode == 2
    assert f"sessions[0] (sessionId {CONTROL}): '_raw' must be dict" in result.stderr


TWICE = 910001
# Sessions that ended 10 days ago, each served with times or an organizer that contradict.
CONTRADICTIONS: dict[int, dict[str, Any]] = {
    910010: {
        "_raw": {"startTime": "1970-01-01T00:00:00.+0000", "endTime": "1970-01-01T00:00:00.+0000"}
    },
    910011: {
        "_raw": {"startTime": "0001-01-01T00:00:00.+0000", "endTime": "0001-01-01T00:30:00.+0000"}
    },
    910012: {"_raw": {"startTime": "2016-03-01T10:00:00.+0000"}},
    910013: {"_raw": {"endTime": "2016-03-01T10:00:00.+0000"}},
}


def test_sentinel_times_foreign_windows_and_a_session_under_two_organizers_stay_unknown(
    service: Callable[..., Service], account_file: Callable[[list[dict[str, Any]]], Path]
) -> None:
    ten_days = timedelta(days=10)
    sessions = [session_entry(CONTROL, ten_days)]
    sessions += [session_entry(key, ten_days, **bent) for key, bent in CONTRADICTIONS.items()]
    sessions.append(session_entry(TWICE, ten_days))
    # Organizer 1002's history lists a session with 910001's id: the API contradicts itself.
    sessions.append(
        session_entry(910002, ten_days, meeting_id=100002, _raw={"sessionId": str(TWICE)})
    )
    deployed = service("--data", str(account_file(sessions)))

    planned = deployed.cli("plan", "--format", "json")
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert [item["sessionId"] for item in plan["items"]] == [str(CONTROL)]
    unknown = {int(entry["sessionId"]) for entry in plan["unknown"]}
    assert unknown == {*CONTRADICTIONS, TWICE}
    with sqlite3.connect(deployed.state_dir / "state.db") as db:
        rows = db.execute("SELECT session_id, problems FROM sessions").fetchall()
    problems = {int(session_id): found for session_id, found in rows}
    assert "before 2000-01-01" in problems[910010]
    assert "before 2000-01-01" in problems[910011]
    assert "outside the window asked for" in problems[910012]
    assert "before the start" in problems[910013]
    assert f"{TWICE} is listed under organizers 1001 and 1002" in problems[TWICE]
    assert problems[CONTROL] is None

    run = deployed.cli("run", "--yes")
    assert run.returncode == 0, run.stderr
    assert [r["path"] for r in deployed.deletes()] == [
        f"/G2M/rest/organizers/1001/sessions/{CONTROL}"
    ]
