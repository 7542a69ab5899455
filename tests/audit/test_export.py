"""Export (CSV, JSONL) with its documented columns and filters, and `audit show`."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import REPO

from retention.audit import AuditLog

Opener = Callable[..., AuditLog]
Cli = Callable[..., Any]


def documented_columns() -> list[str]:
    """The export's columns as the table in docs/audit.md lists them, in order: read from the
    documentation, not imported, since these names are a contract with it."""
    text = (REPO / "docs" / "audit.md").read_text(encoding="utf-8")
    _, after = text.split("The columns, in this order, are a stable contract:", 1)
    table, _ = after.split("\n#", 1)
    return re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)


DOCUMENTED_COLUMNS = documented_columns()


@pytest.fixture
def written(open_log: Opener, write_run: Callable[..., list[int]], db_path: Path) -> Path:
    log = open_log(subject_mode="keep")
    write_run(log)
    log.close()
    return db_path


def _csv(run_cli: Cli, *args: str) -> list[dict[str, str]]:
    result = run_cli("export", "--format", "csv", *args)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("\ufeff")
    reader = csv.DictReader(io.StringIO(result.output[1:]))
    assert reader.fieldnames == DOCUMENTED_COLUMNS
    return list(reader)


def test_csv_has_the_documented_columns_and_one_row_per_event(written: Path, run_cli: Cli) -> None:
    rows = _csv(run_cli)
    assert [row["seq"] for row in rows] == [str(seq) for seq in range(1, 13)]
    intent = rows[3]
    assert intent["event"] == "intent"
    assert intent["sessionId"] == "7000"
    assert intent["subject"] == "Quarterly board review 0"
    assert intent["recordingIds"] == "rec-0"
    assert intent["recordingBytes"] == "1000000"
    outcome = rows[4]
    assert (outcome["outcome"], outcome["intent"], outcome["status"]) == ("deleted", "4", "204")
    assert outcome["prev_hash"] == intent["hash"]
    assert json.loads(rows[0]["details"]) == {"settings": {"rate_limit": 10}, "trigger": "schedule"}


def test_csv_filters_by_policy_organizer_and_time(written: Path, run_cli: Cli) -> None:
    assert [row["seq"] for row in _csv(run_cli, "--policy", "recordings-90d")] == [
        "4", "5", "6", "7", "8", "9"
    ]  # fmt: skip
    assert [row["seq"] for row in _csv(run_cli, "--organizer", "101")] == ["6", "7"]
    # The clock starts at 03:00:00 and ticks one second per event: row 5 is 03:00:05.
    since_until = _csv(
        run_cli, "--since", "2026-03-30T03:00:05Z", "--until", "2026-03-30T03:00:07Z"
    )
    assert [row["seq"] for row in since_until] == ["5", "6"]
    assert len(_csv(run_cli, "--until", "2026-03-30")) == 12
    assert _csv(run_cli, "--since", "2026-03-31") == []


def test_a_subject_that_looks_like_a_formula_is_neutralised(open_log: Opener, run_cli: Cli) -> None:
    log = open_log(subject_mode="keep")
    log.intent(
        run_id="r",
        plan_id="p",
        policy="p",
        policy_hash="h",
        action="delete_session",
        organizer_key=1,
        meeting_id=2,
        session_id=3,
        subject='=HYPERLINK("http://evil.example","x")',
        start_time=None,
        end_time=None,
        recording_ids=[],
        recording_bytes=None,
        attendee_count=None,
    )
    assert _csv(run_cli)[0]["subject"] == '\'=HYPERLINK("http://evil.example","x")'


def test_jsonl_to_a_file_has_the_same_columns_and_typed_values(
    written: Path, run_cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "audit.jsonl"
    result = run_cli("export", "--format", "jsonl", "--out", str(out))
    assert result.exit_code == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 12
    assert all(list(line) == DOCUMENTED_COLUMNS for line in lines)
    assert lines[3]["recordingIds"] == ["rec-0"]
    assert lines[3]["organizerKey"] == "100"
    assert lines[11]["event"] == "checkpoint"
    assert lines[11]["details"]["rows"] == 11


def test_a_time_filter_that_is_not_a_time_exits_2(written: Path, run_cli: Cli) -> None:
    result = run_cli("export", "--format", "csv", "--since", "last tuesday")
    assert result.exit_code == 2
    assert "--since 'last tuesday' is not a date or time" in result.output


def test_show_lists_the_latest_removals_first(written: Path, run_cli: Cli) -> None:
    result = run_cli("show", "--limit", "2")
    assert result.exit_code == 0
    assert "7002" in result.output
    assert "7001" in result.output
    assert "7000" not in result.output
    assert result.output.index("7002") < result.output.index("7001")
    assert "deleted" in result.output
