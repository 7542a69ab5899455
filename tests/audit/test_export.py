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


def _jsonl(run_cli: Cli, *args: str) -> list[dict[str, Any]]:
    result = run_cli("export", "--format", "jsonl", *args)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_a_collector_resumes_exactly_after_the_last_row_it_took(
    open_log: Opener, write_run: Callable[..., list[int]], run_cli: Cli
) -> None:
    log = open_log()
    write_run(log, run_id="run-1")
    log_id = log.log_id
    first = _jsonl(run_cli, "--after-seq", "0", "--log-id", log_id)
    write_run(log, run_id="run-2")
    resumed = _jsonl(run_cli, "--after-seq", str(first[-1]["seq"]), "--log-id", log_id)
    log.close()
    assert resumed[0]["seq"] == first[-1]["seq"] + 1
    assert {row["run"] for row in resumed} >= {"run-2"}
    assert first + resumed == _jsonl(run_cli), "no row twice, none missing"
    assert _jsonl(run_cli, "--after-seq", str(resumed[-1]["seq"]), "--log-id", log_id) == []


def test_resuming_another_log_exits_2_naming_both(written: Path, run_cli: Cli) -> None:
    result = run_cli("export", "--format", "jsonl", "--after-seq", "4", "--log-id", "f" * 32)
    assert result.exit_code == 2
    current = _jsonl(run_cli)[-1]["details"]["log_id"]
    assert f"--log-id {'f' * 32}: this record is log {current}, not log {'f' * 32}" in (
        result.output
    )
    assert "Traceback" not in result.output


def test_after_seq_needs_the_log_id_and_rows_the_record_holds(written: Path, run_cli: Cli) -> None:
    current = _jsonl(run_cli)[-1]["details"]["log_id"]
    alone = run_cli("export", "--format", "csv", "--after-seq", "4")
    assert alone.exit_code == 2
    assert f"--log-id {current}" in alone.output
    beyond = run_cli("export", "--format", "csv", "--after-seq", "40", "--log-id", current)
    assert beyond.exit_code == 2
    assert f"log {current} ends at row 12, before the rows taken" in beyond.output
    negative = run_cli("export", "--format", "csv", "--after-seq", "-1", "--log-id", current)
    assert negative.exit_code == 2
