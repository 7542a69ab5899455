"""The state database and the inventory's reads and marks, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from retention.engine.inventory import (
    WindowResult,
    count_summary,
    iter_sessions,
    mark_removed,
    store_directory,
    store_window,
)
from retention.engine.state import (
    MIGRATIONS,
    known_plan_hash,
    open_state_db,
    record_plan,
    schema_version,
)
from retention.errors import RuntimeFailure
from retention.goto.models import Group, HistoricalSession, Organizer, parse_items

NOW = datetime(2026, 11, 23, tzinfo=UTC)
WINDOW = (datetime(2026, 11, 1, tzinfo=UTC), NOW)
ORGANIZER = Organizer(organizerKey=7, email="o@example.org", groupId=3, groupName="Sales")

# Every migration this version registers, named one by one: a new one is added here with it.
LATEST = len(
    (
        "m001_inventory",
        "m002_plans",
        "m003_account",
        "m004_alerts_and_notices",
        "m005_hold_coverage_and_names",
        "m006_account_url_without_credentials",
        "m007_session_facts",
        "m008_keys_as_text",
        "m009_timeliness",
        "m010_review_postponements",
    )
)


def sessions(*items: dict[str, object]) -> list[HistoricalSession]:
    raw = [
        {
            "sessionId": str(item["id"]),
            "meetingId": "500",
            "organizerKey": "7",
            "email": "o@example.org",
            "subject": "Forecast",
            "meetingType": "scheduled",
            "startTime": item.get("start", "2026-11-10T09:00:00.+0000"),
            "endTime": "2026-11-10T10:00:00.+0000",
            "duration": "60",
            "numAttendees": str(item.get("attendees", 3)),
            **({"recording": item["recording"]} if "recording" in item else {}),
        }
        for item in items
    ]
    return parse_items(HistoricalSession, raw, "GET /test").items


def seeded(tmp_path):
    db = open_state_db(tmp_path / "state" / "state.db")
    group = Group(groupkey=3, groupName="Sales", numOrganizers=1)
    store_directory(db, [ORGANIZER], [group], NOW)
    rows = sessions(
        {"id": 1, "recording": {"recordingId": "r1", "fileSize": 1000}},
        {"id": 2, "attendees": 0},
        {"id": 3, "recording": {"recordingId": "r3", "fileSize": 24}},
    )
    store_window(db, WindowResult(ORGANIZER, *WINDOW, rows), scan_id=1, now=NOW)
    return db


def test_state_database_is_created_in_wal_mode_at_the_latest_schema(tmp_path):
    db = open_state_db(tmp_path / "state" / "state.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema_version(db) == LATEST
    assert MIGRATIONS.pending(db) == []
    assert {"alert_conditions", "notices_sent"} <= set(db.table_names())
    reopened = open_state_db(tmp_path / "state" / "state.db")
    assert schema_version(reopened) == LATEST
    assert MIGRATIONS.pending(reopened) == []


# The schema the numbered migrations of earlier versions wrote (PRAGMA user_version 1 or 2).
OLD_INVENTORY_SCHEMA = """
CREATE TABLE "organizers" ("organizer_key" INTEGER PRIMARY KEY, "email" TEXT,
  "group_key" INTEGER, "group_name" TEXT, "status" TEXT, "seen_at" TEXT);
CREATE TABLE "groups" ("group_key" INTEGER PRIMARY KEY, "name" TEXT, "parent_key" INTEGER,
  "status" TEXT, "num_organizers" INTEGER, "seen_at" TEXT);
CREATE TABLE "sessions" ("session_id" INTEGER PRIMARY KEY, "meeting_id" INTEGER,
  "organizer_key" INTEGER, "organizer_email" TEXT, "group_key" INTEGER, "group_name" TEXT,
  "subject" TEXT, "meeting_type" TEXT, "start_time" TEXT, "end_time" TEXT,
  "duration_minutes" INTEGER, "attendee_count" INTEGER, "recording_id" TEXT,
  "recording_name" TEXT, "recording_bytes" INTEGER, "has_transcript" INTEGER,
  "problems" TEXT, "first_seen" TEXT, "last_seen" TEXT, "last_scan" INTEGER,
  "recording_removed_at" TEXT, "attendees_removed_at" TEXT, "removed_at" TEXT);
CREATE INDEX "idx_sessions_organizer_key_start_time"
  ON "sessions" ("organizer_key", "start_time");
CREATE TABLE "watermarks" ("organizer_key" INTEGER PRIMARY KEY, "scanned_through" TEXT,
  "updated_at" TEXT);
CREATE TABLE "scan_problems" ("id" INTEGER PRIMARY KEY, "scan_id" INTEGER, "endpoint" TEXT,
  "field" TEXT, "problem" TEXT, "keys" TEXT, "seen_at" TEXT);
CREATE TABLE "scans" ("id" INTEGER PRIMARY KEY, "started_at" TEXT, "finished_at" TEXT,
  "full" INTEGER, "calls" INTEGER, "complete" INTEGER, "incomplete" TEXT);
INSERT INTO sessions (session_id, meeting_id, organizer_key, subject, start_time, end_time,
  attendee_count, recording_id, recording_bytes)
  VALUES (41, 500, 7, 'Forecast', '2026-11-10T09:00:00+00:00', '2026-11-10T10:00:00+00:00',
  3, 'r41', 2048);
"""
OLD_PLANS_SCHEMA = """
CREATE TABLE "plans" ("plan_id" TEXT PRIMARY KEY, "plan_hash" TEXT, "created_at" TEXT,
  "applied_by_run" TEXT);
INSERT INTO plans (plan_id, plan_hash, created_at) VALUES ('p-old', 'abc', '2026-11-01');
"""


def old_database(path, version):
    path.parent.mkdir(parents=True)
    conn = sqlite3.connect(path)
    conn.executescript(OLD_INVENTORY_SCHEMA + (OLD_PLANS_SCHEMA if version == 2 else ""))
    conn.execute(f"PRAGMA user_version = {version}")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("version", [1, 2])
def test_state_database_of_an_earlier_version_opens_migrated_with_its_data(tmp_path, version):
    path = tmp_path / "state" / "state.db"
    old_database(path, version)
    db = open_state_db(path)
    assert MIGRATIONS.pending(db) == []
    (record,) = iter_sessions(db)
    assert (record.session_id, record.subject, record.recording_bytes) == (41, "Forecast", 2048)
    assert record.end_time == datetime(2026, 11, 10, 10, tzinfo=UTC)
    record_plan(db, "p-new", "def", NOW)
    assert known_plan_hash(db, "p-new") == "def"
    assert known_plan_hash(db, "p-old") == ("abc" if version == 2 else None)
    assert schema_version(open_state_db(path)) == LATEST


def test_state_database_newer_than_this_program_is_refused(tmp_path):
    path = tmp_path / "state" / "state.db"
    old_database(path, 2)
    db = open_state_db(path)
    db.table("_sqlite_migrations").insert(
        {"migration_set": "retention.state", "name": "m999_future", "applied_at": "later"}
    )
    with pytest.raises(RuntimeFailure, match="does not know \\(m999_future\\)"):
        open_state_db(path)


def test_summary_counts_sessions_recordings_bytes_and_attendee_lists_per_group(tmp_path):
    summary = count_summary(seeded(tmp_path)).as_json()
    expected_counts = {
        "organizers": 1,
        "sessions": 3,
        "recordings": 2,
        "recording_bytes": 1024,
        "attendee_lists": 2,
    }
    assert {k: summary[k] for k in expected_counts} == expected_counts
    assert summary["groups"] == [{"group_key": 3, "name": "Sales", **expected_counts}]


def test_marked_removals_change_what_decide_sees_and_what_is_counted(tmp_path):
    db = seeded(tmp_path)
    mark_removed(db, 1, "delete_recordings", NOW)
    mark_removed(db, 3, "delete_attendees", NOW)
    mark_removed(db, 2, "delete_session", NOW)
    records = {r.session_id: r for r in iter_sessions(db)}
    assert set(records) == {1, 3}
    assert not records[1].has_recording
    assert records[1].recording_bytes is None
    assert records[3].attendee_count == 0
    totals = count_summary(db).total
    assert (totals.sessions, totals.recordings, totals.recording_bytes) == (2, 1, 24)
    assert totals.attendee_lists == 1


def test_a_rescan_keeps_an_attendee_list_removal_the_api_still_counts(tmp_path):
    db = seeded(tmp_path)
    mark_removed(db, 1, "delete_attendees", NOW)
    rows = sessions({"id": 1, "recording": {"recordingId": "r1", "fileSize": 1000}})
    store_window(db, WindowResult(ORGANIZER, *WINDOW, rows), scan_id=2, now=NOW)
    records = {r.session_id: r for r in iter_sessions(db)}
    assert records[1].attendee_count == 0


def test_a_rescan_keeps_a_recording_removal_unless_the_api_shows_another_recording(tmp_path):
    db = seeded(tmp_path)
    mark_removed(db, 1, "delete_recordings", NOW)
    mark_removed(db, 3, "delete_recordings", NOW)
    later = datetime(2026, 11, 20, tzinfo=UTC)
    rows = sessions(
        {"id": 1, "recording": {"recordingId": "r1", "fileSize": 1000}},
        {"id": 3, "recording": {"recordingId": "r3-new", "fileSize": 77}},
    )
    store_window(db, WindowResult(ORGANIZER, *WINDOW, rows), scan_id=2, now=later)
    records = {r.session_id: r for r in iter_sessions(db)}
    assert records[1].recording_id is None
    assert (records[3].recording_id, records[3].recording_bytes) == ("r3-new", 77)
    seen = {int(row["session_id"]): row for row in db.query("SELECT * FROM sessions")}
    assert seen[1]["first_seen"] == seen[3]["first_seen"] != seen[1]["last_seen"]


def test_a_window_read_again_drops_sessions_it_no_longer_lists_but_not_unknown_starts(tmp_path):
    db = seeded(tmp_path)
    unknown_start = sessions({"id": 9, "start": ""})
    dropped = store_window(db, WindowResult(ORGANIZER, *WINDOW, unknown_start), scan_id=2, now=NOW)
    assert dropped == 3
    assert {r.session_id for r in iter_sessions(db)} == {9}
    rows = sessions({"id": 1})
    dropped = store_window(db, WindowResult(ORGANIZER, *WINDOW, rows), scan_id=3, now=NOW)
    assert dropped == 0
    assert {r.session_id for r in iter_sessions(db)} == {1, 9}


def test_session_records_round_trip_every_field(tmp_path):
    db = seeded(tmp_path)
    record = next(r for r in iter_sessions(db) if r.session_id == 1)
    assert record.meeting_id == 500
    assert record.organizer_key == 7
    assert record.organizer_email == "o@example.org"
    assert (record.group_key, record.group_name) == (3, "Sales")
    assert (record.subject, record.meeting_type) == ("Forecast", "scheduled")
    assert record.start_time == datetime(2026, 11, 10, 9, tzinfo=UTC)
    assert record.end_time == datetime(2026, 11, 10, 10, tzinfo=UTC)
    assert (record.attendee_count, record.recording_id, record.recording_bytes) == (3, "r1", 1000)
