"""What a plan shows the reviewer of each session: organizer email, group, subject (in the audit
record's form) and times, in JSON and CSV; plan files without them still load and apply."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import records
from plans import load_folder, plan_for

from retention.audit import AuditLog
from retention.cli.render import write_plan_csv
from retention.engine.plan import Plan, SubjectForm, no_subject
from retention.engine.planfile import plan_refusals, read_plan_file
from retention.engine.planitem import plan_hash
from retention.policy import PolicySet
from retention.sandbox.policies import policy_set, rule
from retention.service.preview import audit_subject
from retention.settings import Settings

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)
POLICIES = policy_set(
    rule("recordings", 30),
    rule("sessions", 90),
    holds="  - {id: LIT-1, reason: Litigation., sessions: [3]}\n",
)
SESSIONS = [
    records.ended(1, at=AS_OF - timedelta(days=40), subject="=HYPERLINK(evil)"),
    records.ended(2, at=AS_OF - timedelta(days=100), organizer_email="bo@example.com"),
    records.ended(3, at=AS_OF - timedelta(days=100), group_name="Legal"),  # held
    records.ended(4, at=AS_OF - timedelta(days=100), end_time=None),  # unknown end
]


@pytest.fixture
def loaded(tmp_path: Path) -> PolicySet:
    return load_folder(tmp_path, POLICIES)


def plan_with(loaded: PolicySet, subject: SubjectForm = no_subject) -> Plan:
    return plan_for(SESSIONS, loaded, AS_OF, plan_id="plan-1", subject=subject)


def test_items_blocked_and_unknown_entries_name_the_organizer_group_subject_and_times(
    loaded: PolicySet,
) -> None:
    document = plan_with(loaded, lambda subject: subject and subject.upper()).document()

    items = {item["sessionId"]: item for item in document["items"]}
    assert items["2"]["organizer_email"] == "bo@example.com"
    assert items["2"]["group"] == "Sales"
    assert items["2"]["subject"] == "WEEKLY SYNC"
    [held] = document["blocked"]
    assert (held["sessionId"], held["by"], held["group"]) == ("3", "hold:LIT-1", "Legal")
    assert held["startTime"] == "2026-08-14T23:00:00Z"
    assert held["endTime"] == "2026-08-15T00:00:00Z"
    [unknown] = document["unknown"]
    assert (unknown["sessionId"], unknown["fields"]) == ("4", ["end_time"])
    assert unknown["endTime"] is None
    assert unknown["startTime"] == "2026-08-14T23:00:00Z"


def test_the_plan_hash_covers_what_the_reviewer_reads(loaded: PolicySet) -> None:
    document = plan_with(loaded).document()
    document["items"][0]["organizer_email"] = "someone-else@example.com"

    refusals = plan_refusals(
        read_plan_file("plan.json", json.dumps(document)),
        known_hash=document["plan_hash"],
        policies_digest=loaded.digest,
        policy_hashes=loaded.content_hashes,
        now=AS_OF,
        max_age=timedelta(hours=24),
    )

    assert [code for code, _ in refusals] == ["changed_plan"]
    assert "altered" in refusals[0][1]


def test_a_plan_file_written_before_these_fields_still_loads_and_checks(loaded: PolicySet) -> None:
    document = plan_with(loaded).document()
    item_fields = ("organizer_email", "group", "subject")
    for item in document["items"]:
        for field in item_fields:
            del item[field]
    for entry in (*document["blocked"], *document["unknown"]):
        for field in (*item_fields, "startTime", "endTime"):
            del entry[field]
    for field in ("offline", "inventory_at", "inventory_age_s"):
        document.pop(field)
    document["plan_hash"] = plan_hash(document)

    plan = read_plan_file("old.json", json.dumps(document))

    assert {(i.organizer_email, i.group, i.subject) for i in plan.items} == {(None, None, None)}
    assert [i.key for i in plan.items] == [i.key for i in plan_with(loaded).items]
    refusals = plan_refusals(
        plan,
        known_hash=document["plan_hash"],
        policies_digest=loaded.digest,
        policy_hashes=loaded.content_hashes,
        now=AS_OF,
        max_age=timedelta(hours=24),
    )
    assert refusals == []


def csv_rows(document: dict[str, Any]) -> list[dict[str, str]]:
    out = io.StringIO()
    write_plan_csv(document, out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def test_the_csv_lists_removals_then_blocked_and_unknown_rows_with_their_times(
    loaded: PolicySet,
) -> None:
    document = plan_with(loaded, lambda subject: subject).document()

    rows = csv_rows(document)

    assert [(row["kind"], row["sessionId"], row["action"]) for row in rows] == [
        ("removal", "2", "delete_session"),
        ("removal", "1", "delete_recordings"),
        ("blocked", "3", "delete_session"),
        ("unknown", "4", ""),
    ]
    blocked, unknown = rows[2], rows[3]
    assert (blocked["by"], blocked["startTime"], blocked["endTime"]) == (
        "hold:LIT-1",
        "2026-08-14T23:00:00Z",
        "2026-08-15T00:00:00Z",
    )
    assert (unknown["fields"], unknown["endTime"]) == ("end_time", "")
    assert rows[0]["organizer_email"] == "bo@example.com"
    assert rows[0]["also_matched"] == "recordings-30d"
    # A subject is free text: a spreadsheet must not read it as a formula.
    assert rows[1]["subject"] == "'=HYPERLINK(evil)"


@pytest.mark.parametrize("mode", ["hash", "keep", "omit"])
def test_the_subject_is_the_one_the_audit_record_stores(tmp_path: Path, mode: str) -> None:
    settings = Settings(state_dir=tmp_path, audit_subject=mode)
    with AuditLog.open(
        settings.audit_db, subject_mode=settings.audit_subject, clock=lambda: AS_OF
    ) as record:
        stored = record.subject_value("Contract review")
    before = (tmp_path / "audit.db").read_bytes()

    with audit_subject(settings) as shown:
        assert shown("Contract review") == stored
        assert shown(None) is None

    assert (tmp_path / "audit.db").read_bytes() == before
    if mode == "hash":
        assert stored is not None
        assert len(stored) == 64


def test_before_the_record_exists_a_hashed_subject_is_unknown(tmp_path: Path) -> None:
    with audit_subject(Settings(state_dir=tmp_path, audit_subject="hash")) as shown:
        assert shown("Contract review") is None
    with audit_subject(Settings(state_dir=tmp_path, audit_subject="keep")) as shown:
        assert shown("Contract review") == "Contract review"
    assert not (tmp_path / "audit.db").exists()
