"""Every table of the CLI at 80 and 200 columns: no line too long, no number cut or wrapped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console
from support import Deployment

from retention.cli.tables import FitTable, output_width

# A size's unit always follows its number on the same line; a number is never cut short.
_UNIT_WITHOUT_NUMBER = re.compile(r"(?<!\d )\b(?:KiB|MiB|GiB|TiB|PiB)\b")
_CUT_NUMBER = re.compile(r"(?<![\w.,])[\d.,]+…|…\d")
_NUMBER_AT_END = re.compile(r"\d$")
_UNIT_AT_START = re.compile(r"^(?:B|KiB|MiB|GiB|TiB|PiB)\b")


def problems(text: str, width: int) -> list[str]:
    """What breaks the rules in `text` at `width` columns (empty when it fits)."""
    found = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        # Only a word longer than the line (a path) may pass the width, on a line of its own.
        if len(line) > width and len(line.split()) > 1:
            found.append(f"line {number} is {len(line)} wide: {line!r}")
        if _UNIT_WITHOUT_NUMBER.search(line):
            found.append(f"line {number} has a unit without its number: {line!r}")
        if _CUT_NUMBER.search(line):
            found.append(f"line {number} cuts a number: {line!r}")
        following = lines[number + 1].strip() if number + 1 < len(lines) else ""
        if _NUMBER_AT_END.search(line.rstrip()) and _UNIT_AT_START.match(following):
            found.append(f"line {number} wraps a number from its unit: {line!r}")
    return found


def test_the_checks_catch_a_cut_total_and_a_wrapped_unit() -> None:
    assert problems("total 1572234854…", 80)
    assert problems("size 102.8\n     GiB", 80)
    assert problems("x" * 41 + " " + "y" * 40, 80)
    assert problems("  " + "/a/longer/path" * 7, 80) == []
    assert problems("size 102.8 GiB, 3 sessions", 80) == []


@pytest.mark.parametrize("width", [80, 200])
def test_every_table_fits_the_width_without_cutting_numbers(
    deployment: Deployment, tmp_path: Path, width: int
) -> None:
    env = {"COLUMNS": str(width)}
    plan_file = tmp_path / "plan.json"
    commands = [
        ("inventory",),
        ("inventory", "--list", "organizers"),
        ("inventory", "--list", "groups"),
        ("plan",),
        ("plan", "--out", str(plan_file)),
        ("apply", str(plan_file), "--yes"),
        ("audit", "show", "--limit", "50"),
        ("audit", "verify"),
        ("config", "show"),
        ("auth", "status"),
    ]
    seen_sizes = 0
    for command in commands:
        done = deployment.cli(*command, extra_env=env, check=True)
        if command == ("config", "show"):
            # A setting is never broken: too wide for a table, it is a `name = value` line
            # (tests/cli/test_widths.py).
            continue
        # Log lines are JSON for machines when not on a terminal: not the tables people read.
        notes = [line for line in done.stderr.splitlines() if not line.startswith('{"')]
        output = done.stdout + "\n".join(notes)
        assert problems(output, width) == [], f"retention {' '.join(command)}:\n{output}"
        seen_sizes += len(re.findall(r"\d \w?i?B\b", output))
    assert deployment.deletes(), "the apply made removals"
    assert seen_sizes > 0, "sizes were shown"


def test_a_wide_table_is_a_table_at_200_and_keeps_its_numbers_whole_at_80(
    deployment: Deployment,
) -> None:
    deployment.cli("plan", "--out", "/dev/null", check=True)
    deployment.cli("run", "--yes", check=True)
    wide = deployment.cli("audit", "show", extra_env={"COLUMNS": "200"}, check=True).stdout
    narrow = deployment.cli("audit", "show", extra_env={"COLUMNS": "80"}, check=True).stdout
    sessions = set(re.findall(r"\b\d{6,}\b", wide))
    assert sessions
    assert sessions <= set(re.findall(r"\b\d{6,}\b", narrow))
    assert "session" in wide.splitlines()[1]


def test_text_gives_way_before_numbers_and_rows_become_fields_when_nothing_fits() -> None:
    table = FitTable("t")
    table.column("subject")
    table.column("size", "number")
    table.row("a very long subject that cannot fit in a narrow terminal at all", "102.8 GiB")
    narrow = Console(width=30, record=True)
    table.print(narrow)
    text = narrow.export_text()
    assert "102.8 GiB" in text
    assert problems(text, 30) == []
    tiny = Console(width=12, record=True)
    table.print(tiny)
    fields = tiny.export_text()
    assert "102.8 GiB" in fields


def test_the_width_is_columns_else_80_when_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with (tmp_path / "out.txt").open("w") as piped:
        monkeypatch.delenv("COLUMNS", raising=False)
        assert output_width(piped) == 80
        monkeypatch.setenv("COLUMNS", "123")
        assert output_width(piped) == 123
        monkeypatch.setenv("COLUMNS", "wide")
        assert output_width(piped) == 80
