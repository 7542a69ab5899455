"""`audit show` at 0, 80 and 200 columns: every row shown, no word cut, no line too long."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from terminals import Terminal, zero_column_terminal

from retention.audit import AuditLog
from retention.cli.app import cli

Opener = Callable[..., AuditLog]
Cli = Callable[..., Any]
# Words of each of the three rows `audit show` prints for the written run: each row's whole.
WORDS = ("recordings-90d", "recordings", "deleted", "2026-03-30")


@pytest.fixture
def written(open_log: Opener, write_run: Callable[..., list[int]]) -> None:
    log = open_log()
    write_run(log, sessions=3)
    log.close()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Iterator[Terminal]:
    """A terminal reporting 0 columns, COLUMNS unset. The test makes it standard output:
    pytest sets its own when the test's call begins."""
    monkeypatch.delenv("COLUMNS", raising=False)
    with zero_column_terminal() as opened:
        yield opened


def whole(word: str, text: str) -> int:
    """How many times `word` stands whole in `text` (a cut one is not counted)."""
    return len(re.findall(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text))


def test_show_on_a_terminal_reporting_0_columns_prints_at_80(
    written: None,
    run_cli: Cli,
    db_path: Path,
    terminal: Terminal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", terminal.stream)
    with pytest.raises(SystemExit) as done:
        cli.main(["audit", "show", "--db", str(db_path)], prog_name="retention")
    assert done.value.code in (0, None)
    shown = terminal.read()
    assert "Recent removals (3)" in shown, repr(shown)
    assert all(str(session) in shown for session in (7000, 7001, 7002))
    for word in WORDS:
        assert whole(word, shown) == 3, (word, shown)
    assert max(len(line) for line in shown.splitlines()) <= 80


@pytest.mark.parametrize("width", [80, 200])
def test_show_never_cuts_a_word_nor_passes_the_width(
    written: None, run_cli: Cli, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    shown = run_cli("show").output
    assert all(str(session) in shown for session in (7000, 7001, 7002))
    assert max(len(line) for line in shown.splitlines()) <= width
    for word in WORDS:
        assert whole(word, shown) == 3, (word, shown)
    if width == 200:
        assert re.search(r"^\s*row\s+time\s+outcome\s+action\s+policy", shown, re.M)


def test_the_count_misses_a_cut_word() -> None:
    assert whole("recordings", "1  record\n   ings") == 0
    assert whole("recordings", "recordings-90d recordings") == 1
