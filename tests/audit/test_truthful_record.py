"""The record tells the truth: each intent holds what its action removes; every total agrees."""

from __future__ import annotations

import json
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from retention.audit import AuditLog
from retention.units import format_bytes

Opener = Callable[..., AuditLog]
Cli = Callable[..., Any]
# (action, recording bytes the session holds, attendees, outcome)
REMOVALS = [
    ("delete_attendees", 675_282_944, 12, "deleted"),
    ("delete_attendees", 1_000_000, 3, "deleted"),
    ("delete_recordings", 10_485_760, 5, "deleted"),
    ("delete_recordings", 2_048, 5, "failed"),
    ("delete_session", 1_610_612_736, 8, "deleted"),
    ("delete_session", 4_096, 2, "already_absent"),
]


class _Elements(HTMLParser):
    """Every element's attributes by id, and the data-* rows of each table."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str | None]] = {}
        self.rows: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "id" in found:
            self.by_id[str(found["id"])] = found
        if tag == "tr":
            self.rows.append(found)


@pytest.fixture
def written(open_log: Opener, db_path: Path) -> Path:
    log = open_log(subject_mode="omit")
    log.run_started(run_id="run-1", trigger="manual", settings_summary={})
    for number, (action, size, attendees, outcome) in enumerate(REMOVALS):
        # The executor passes every fact it has; the record keeps what the action removes.
        seq = log.intent(
            run_id="run-1",
            plan_id="plan-1",
            policy="p",
            policy_hash="h" * 64,
            action=action,
            organizer_key=1,
            meeting_id=10 + number,
            session_id=913_000 + number,
            subject=None,
            start_time=None,
            end_time=None,
            recording_ids=[f"rec-{number}"],
            recording_bytes=size,
            attendee_count=attendees,
        )
        reason = "HTTP 500" if outcome == "failed" else None
        log.outcome(intent_seq=seq, outcome=outcome, status=204, reason=reason)  # type: ignore[arg-type]
    log.run_finished(run_id="run-1", counts={"deleted": 3}, result="ok")
    log.checkpoint()
    log.close()
    return db_path


def _export(run_cli: Cli) -> list[dict[str, Any]]:
    result = run_cli("export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_attendee_list_intents_carry_no_recording(written: Path, run_cli: Cli) -> None:
    intents = [row for row in _export(run_cli) if row["event"] == "intent"]
    fields = {
        row["action"]: (row["recordingIds"], row["recordingBytes"], row["attendeeCount"])
        for row in intents
    }
    assert fields["delete_attendees"] == (None, None, 3)
    assert fields["delete_recordings"] == (["rec-3"], 2_048, None)
    assert fields["delete_session"] == (["rec-5"], 4_096, 2)


def test_the_export_sums_to_the_reports_figures(
    written: Path, run_cli: Cli, tmp_path: Path
) -> None:
    rows = _export(run_cli)
    outcome_of = {row["intent"]: row["outcome"] for row in rows if row["event"] == "outcome"}
    removed = [r for r in rows if r["event"] == "intent" and outcome_of[r["seq"]] == "deleted"]
    exported_bytes = sum(row["recordingBytes"] or 0 for row in removed)
    by_hand = 10_485_760 + 1_610_612_736
    assert exported_bytes == by_hand
    out = tmp_path / "report.html"
    result = run_cli("report", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = _Elements()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.by_id["bytes-removed"]["data-value"] == str(by_hand)
    assert page.by_id["removed-count"]["data-value"] == str(len(removed))
    by_action = {r["data-action"]: r for r in page.rows if r.get("data-action")}
    assert by_action["delete_attendees"]["data-bytes"] == "0"
    assert by_action["delete_session"]["data-bytes"] == str(1_610_612_736)
    assert f"{format_bytes(by_hand)}</b>" in out.read_text(encoding="utf-8")
    shown = run_cli("show")
    assert shown.exit_code == 0
    assert format_bytes(1_610_612_736) in shown.output  # "1.5 GiB", as the report prints it
    assert "675,282,944" not in shown.output


def test_the_report_shows_a_malformed_checkpoint_line_and_the_signature_state(
    written: Path, run_cli: Cli, tmp_path: Path
) -> None:
    with (written.parent / "audit-checkpoints.jsonl").open("a") as handle:
        handle.write("<b>not json</b>\n")
    out = tmp_path / "report.html"
    result = run_cli("report", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    page = _Elements()
    page.feed(text)
    assert page.by_id["verify-status"]["data-clean"] == "false"
    assert page.by_id["signature-status"]["data-state"] == "not_checked"
    assert 'data-code="checkpoint_malformed" data-line="2"' in text
    assert "<b>not json</b>" not in text  # escaped by the template, not by hand


def test_signature_state_in_the_report_is_verified_under_the_given_key(
    written: Path, run_cli: Cli, tmp_path: Path, signing_key: Any
) -> None:
    public = tmp_path / "audit.pub"
    public.write_bytes(
        signing_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    out = tmp_path / "report.html"
    result = run_cli("report", "--out", str(out), "--public-key", str(public))
    assert result.exit_code == 0, result.output
    assert "CLEAN, signatures verified" in result.output
    page = _Elements()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.by_id["signature-status"]["data-state"] == "verified"


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (512, "512 B"), (1536, "1.5 KiB"), (110_378_091_315, "102.8 GiB")],
)
def test_bytes_are_printed_in_iec_units(size: int, shown: str) -> None:
    assert format_bytes(size) == shown
