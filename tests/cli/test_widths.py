"""Widths at 0, 80 and 200 columns: settings, approvers, names and the prompt's summary whole."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from rich.console import Console
from terminals import Terminal, zero_column_terminal

import retention.cli.config  # noqa: F401  (attaches `config` to the root group)
import retention.cli.plan as plan_cli
from retention.cli.app import cli
from retention.cli.approve import print_proposals
from retention.cli.render import render_plan_table
from retention.cli.tables import FitTable, console_for, output_width

APPROVERS = ["ana.lopez@compliance.example.com", "bartholomew.chen@legal.example.com"]
LONG_POLICY = "attendee-lists-of-external-webinars-after-thirty-days"


def whole(word: str, text: str) -> int:
    """How many times `word` stands whole in `text` (a cut one is not counted)."""
    return len(re.findall(rf"(?<![\w@.-]){re.escape(word)}(?![\w@-])", text))


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No outer RETENTION_*; an empty TOML file; a state directory too long for 80 columns."""
    for name in list(os.environ):
        if name.startswith("RETENTION_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("RETENTION_CONFIG", str(empty))
    state = tmp_path / "a-state-directory-whose-path-is-long" / "state"
    monkeypatch.setenv("RETENTION_STATE_DIR", str(state))
    return state


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    monkeypatch.delenv("COLUMNS", raising=False)
    with zero_column_terminal() as opened:
        yield opened


def settings_rows() -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["config", "show", "--format", "json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output)["settings"])


def each_setting_on_one_line(text: str) -> list[str]:
    """The settings whose name and value are not both whole on one line of `text`."""
    lines = text.splitlines()
    missing = []
    for row in settings_rows():
        value = "(unset)" if row["value"] is None else str(row["value"])
        if not any(whole(row["name"], line) and value in line for line in lines):
            missing.append(row["name"])
    return missing


@pytest.mark.parametrize("width", [80, 200])
def test_config_show_keeps_every_name_and_value_whole(settings_env: Path, width: int) -> None:
    shown = CliRunner().invoke(cli, ["config", "show"], env={"COLUMNS": str(width)}).output
    assert each_setting_on_one_line(shown) == [], shown
    if width == 80:  # the state directory cannot fit a table: `name = value` lines
        assert f"state_dir = {settings_env}  # environment (RETENTION_STATE_DIR)" in shown
        assert "rate_limit = 10.0  # default" in shown.splitlines()
    else:
        assert re.match(r"SETTING\s+VALUE\s+SOURCE", shown)


def test_config_show_on_a_terminal_reporting_0_columns_prints_at_80(
    settings_env: Path, terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", terminal.stream)
    with pytest.raises(SystemExit):
        cli.main(["config", "show"], prog_name="retention")
    shown = terminal.read()
    assert "rate_limit = 10.0  # default" in shown.splitlines()
    assert each_setting_on_one_line(shown) == []


def test_the_setting_check_misses_a_cut_name() -> None:
    assert whole("rate_limit", "rate_lim\nit  10.0") == 0


def proposal(principals: list[str], expired: bool = False) -> dict[str, Any]:
    return {
        "file": "/var/lib/retention/plans/plan-20261123T030000Z-2f0c.json",
        "items": 1204,
        "age_hours": 30.25,
        "expired": expired,
        "approvals": {"valid": len(principals), "needed": 2, "principals": principals},
    }


@pytest.mark.parametrize("width", [40, 80, 200])
def test_approvers_are_never_cut(width: int) -> None:
    console = Console(record=True, width=width)
    rows = [proposal(APPROVERS, expired=True), proposal(APPROVERS[:1])]
    print_proposals(rows, Path("/var/lib/retention/plans"), console)
    shown = console.export_text()
    assert whole(APPROVERS[0], shown) == 2, shown
    assert whole(APPROVERS[1], shown) == 1, shown
    assert whole("plan-20261123T030000Z-2f0c.json", shown) == 2, shown
    assert max(len(line) for line in shown.splitlines()) <= max(width, len(APPROVERS[0]) + 16)
    if width == 200:
        assert re.search(r"file\s+removals\s+approvals\s+approved by\s+age", shown)


@pytest.mark.parametrize("width", [40, 80, 200])
def test_policy_names_are_never_cut(width: int) -> None:
    totals = {
        "sessions": 3,
        "recordings": 2,
        "recording_bytes": 110_000_000_000,
        "attendee_lists": 3,
        "in_scope": 1_000_000,
    }
    document = {
        "plan_id": "plan-1",
        "as_of": "2026-11-23T00:00:00+00:00",
        "summary": {
            "sessions_scanned": 1_000_000,
            "items": 8,
            "per_policy": {LONG_POLICY: totals, "recordings-30d": totals},
            "total": totals,
            "blocked_by": {"hold:LIT-2026-0042-acme-litigation": 4},
            "unknown": 0,
        },
    }
    console = Console(record=True, width=width)
    render_plan_table(document, console)
    shown = console.export_text()
    assert whole(LONG_POLICY, shown) == 1, shown
    assert whole("hold:LIT-2026-0042-acme-litigation", shown) == 1, shown
    assert "102.4 GiB" in shown


def test_a_words_column_gives_way_to_field_lines_rather_than_cut() -> None:
    table = FitTable("t")
    table.column("policy", "words")
    table.column("size", "number")
    table.row(LONG_POLICY, "102.8 GiB")
    narrow = Console(record=True, width=40)
    table.print(narrow)
    shown = narrow.export_text()
    assert whole(LONG_POLICY, shown) == 1


def test_the_width_of_a_terminal_reporting_0_columns_is_80(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert output_width(terminal.stream) == 80
    monkeypatch.setenv("COLUMNS", "0")
    assert output_width(terminal.stream) == 80


def test_the_apply_prompt_keeps_its_summary_on_a_terminal_reporting_0_columns(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stderr", terminal.stream)
    monkeypatch.setattr(plan_cli.sys, "stdin", terminal.stream)
    asked: list[str] = []
    monkeypatch.setattr(click, "confirm", lambda text, **_kw: asked.append(text) or False)
    ask = plan_cli._confirm(yes=False, console=console_for(stderr=True))
    assert ask is not None
    item = {"sessionId": "9001", "action": "delete_recordings", "recording_bytes": 1024}
    assert ask({"items": [item]}) is False
    assert asked == ["Proceed?"]
    shown = " ".join(terminal.read().split())
    assert "About to make 1 removal on 1 distinct session: 1 recording (1.0 KiB)" in shown
