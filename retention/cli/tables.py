"""Output that fits the width in force: consoles, tables and prose that never cut a number.

The width is `COLUMNS` when set, else the terminal's, else 80 (piped output, mail, cron, and a
terminal that reports 0 columns). A table's numbers, sizes, times and names keep their words
whole; only text columns (subjects, files) are wrapped. When even that cannot fit, each row is
printed as `field  value` lines. Prose is wrapped at spaces, never inside a word nor between a
number and its unit (`102.8 GiB`, `12 sessions`).
"""

from __future__ import annotations

import os
import re
import sys
import textwrap
from dataclasses import dataclass, field
from typing import IO, Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

DEFAULT_WIDTH = 80
# A text column shrinks to this before a table gives way to `field: value` lines.
TEXT_MIN = 6
# A number and the word after it (its unit, or what it counts) never part at a line break.
_NUMBER_UNIT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?) (?=[A-Za-z(])")
_GLUE = "\x00"

# number: counts, sizes, keys (right-aligned, never wrapped); whole: a value never wrapped
# (a setting's name); words: wrapped at spaces only (times, names, actions, approvers);
# text: wrapped anywhere when it must (subjects, files).
Kind = Literal["number", "whole", "words", "text"]


def terminal_columns(stream: IO[str] | None) -> int | None:
    """The width the terminal behind `stream` reports; None when it is not a terminal or
    reports none (0 columns: a serial console, some containers)."""
    if stream is None or not stream.isatty():
        return None
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError):
        return None
    return columns if columns > 0 else None


def output_width(stream: IO[str] | None = None) -> int:
    """`COLUMNS` when it is a positive number, else the terminal's width, else 80."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return terminal_columns(stream) or DEFAULT_WIDTH


def console_for(*, stderr: bool = False) -> Console:
    """A console for standard output (or error) at the width in force."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=output_width(stream), soft_wrap=False)


def wrap(text: str, width: int, indent: str = "") -> list[str]:
    """`text` wrapped to `width` at spaces; a number and its unit stay on one line, and a word
    longer than the line (a path, an address) stays whole on a line of its own."""
    glued = _NUMBER_UNIT.sub(lambda m: m.group(1) + _GLUE, text)
    lines = textwrap.wrap(
        glued,
        width=max(width, 20),
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
        replace_whitespace=False,
        drop_whitespace=True,
    ) or [""]
    return [line.replace(_GLUE, " ") for line in lines]


def say(console: Console, text: str, *, style: str | None = None, indent: str = "  ") -> None:
    """Print plain prose wrapped to the console's width (no markup is read from `text`)."""
    for line in text.split("\n"):
        for part in wrap(line, console.width, indent):
            console.print(Text(part, style=style or ""), soft_wrap=True)


@dataclass
class _Column:
    header: str
    kind: Kind
    justify: Literal["left", "right"]


@dataclass
class FitTable:
    """A table whose numbers and words are never cut: text columns give way first, then the
    layout.

    `number` and `whole` columns keep their whole cells on one line; `words` columns (times,
    names, actions, approvers) may break only at a space; `text` columns wrap, down to TEXT_MIN
    characters.
    """

    title: str | None = None
    plain: bool = False  # no header rule: lines that `grep` and `awk` read as they are
    columns: list[_Column] = field(default_factory=list)
    rows: list[tuple[list[str], str | None, bool]] = field(default_factory=list)

    def column(
        self, header: str, kind: Kind = "text", justify: Literal["left", "right"] | None = None
    ) -> None:
        """Add a column; numbers are right-aligned unless `justify` says otherwise."""
        side = justify or ("right" if kind == "number" else "left")
        self.columns.append(_Column(header, kind, side))

    def row(self, *cells: str, style: str | None = None, section: bool = False) -> None:
        """Add a row of plain cells; `section` draws a gap before it (a total row)."""
        self.rows.append(([str(cell) for cell in cells], style, section))

    def print(self, console: Console) -> None:
        """Render at the console's width: a table when it fits, `field: value` lines if not."""
        widths = self._widths(console.width)
        if widths is None:
            self._print_records(console)
            return
        table = _frame(self.title, plain=self.plain)
        for spec, width in zip(self.columns, widths, strict=True):
            table.add_column(
                Text(spec.header, overflow="fold", no_wrap=False),  # a header may wrap
                justify=spec.justify,
                width=width,
                no_wrap=spec.kind in {"number", "whole"},
                overflow="fold",
            )
        for cells, style, section in self.rows:
            if section and table.row_count:
                table.rows[-1].end_section = True
            table.add_row(*(Text(cell) for cell in cells), style=style)
        console.print(table)

    def fits(self, width: int) -> bool:
        """Whether the rows fit `width` as a table (else `print` gives `field  value` lines)."""
        return self._widths(width) is not None

    def _widths(self, width: int) -> list[int] | None:
        """Each column's width, or None when the numbers alone leave no room for the text."""
        natural, least = [], []
        for index, spec in enumerate(self.columns):
            cells = [cells[index] for cells, _style, _section in self.rows]
            longest = max((cell_len(cell) for cell in cells), default=0)
            header_word = max((cell_len(w) for w in spec.header.split()), default=1)
            natural.append(max(longest, cell_len(spec.header), 1))
            if spec.kind in {"number", "whole"}:
                least.append(max(longest, header_word))
            elif spec.kind == "words":
                words = [cell_len(w) for cell in cells for w in cell.split()]
                least.append(max([header_word, *words]))
            else:
                least.append(min(natural[-1], max(TEXT_MIN, header_word)))
        room = width - self._overhead()
        if sum(least) > room:
            return None
        widths = list(least)
        spare = room - sum(widths)
        # Text (names, files) grows first, then times, then numbers whose header is wider than
        # their cells; each step to the one lacking the most.
        for kind in ("text", "words", "number", "whole"):
            while spare > 0:
                lacking = [
                    (natural[i] - widths[i], i)
                    for i, spec in enumerate(self.columns)
                    if spec.kind == kind and widths[i] < natural[i]
                ]
                if not lacking:
                    break
                widths[max(lacking)[1]] += 1
                spare -= 1
        return widths

    def _overhead(self) -> int:
        """Dividers and padding: what the frame adds to the cells' widths."""
        gaps = max(len(self.columns) - 1, 0)
        return 2 * gaps

    def _print_records(self, console: Console) -> None:
        if self.title:
            say(console, self.title, style="bold")
        label = max((cell_len(spec.header) for spec in self.columns), default=0)
        for cells, style, _section in self.rows:
            console.print()
            for spec, cell in zip(self.columns, cells, strict=True):
                say(console, f"{spec.header:<{label}}  {cell}", style=style, indent=" " * 4)


def _frame(title: str | None, *, plain: bool) -> Table:
    """Headers underlined (unless plain), columns two spaces apart, no outer edge."""
    return Table(
        title=title,
        title_justify="left",
        box=None if plain else box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 2, 0, 0) if plain else (0, 1, 0, 0),
    )
