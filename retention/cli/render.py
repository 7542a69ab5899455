"""Rendering plans and run results for people (rich tables) and for tools (JSON, CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from retention.engine.caps import CapViolation
from retention.engine.execute import ExecutionReport
from retention.units import format_bytes

ITEM_COLUMNS = (
    "kind",
    "organizerKey",
    "organizer_email",
    "group",
    "subject",
    "meetingId",
    "sessionId",
    "action",
    "policy",
    "also_matched",
    "by",
    "until",
    "startTime",
    "endTime",
    "recordingId",
    "recording_bytes",
    "attendees",
    "fields",
    "reason",
)
# A cell starting with one of these is a formula to a spreadsheet (as in `audit export`).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def render_plan_table(
    document: Mapping[str, Any], console: Console, violations: Sequence[CapViolation] = ()
) -> None:
    """The preview: per policy what would go, what was blocked and why, what is unknown."""
    summary = document["summary"]
    console.print(
        f"Plan [bold]{document['plan_id']}[/] as of {document['as_of']}: "
        f"{summary['sessions_scanned']} sessions scanned, {summary['items']} removals planned"
    )
    table = Table(title="Removals by policy", title_justify="left")
    table.add_column("policy", no_wrap=True)
    for column in ("sessions", "recordings", "recording size", "attendee lists"):
        table.add_column(column, justify="right")
    table.add_column("in scope", justify="right")
    for name, totals in summary["per_policy"].items():
        table.add_row(
            name,
            str(totals["sessions"]),
            str(totals["recordings"]),
            format_bytes(totals["recording_bytes"]),
            str(totals["attendee_lists"]),
            str(totals["in_scope"]),
        )
    total = summary["total"]
    table.add_row(
        "[bold]total[/]",
        str(total["sessions"]),
        str(total["recordings"]),
        format_bytes(total["recording_bytes"]),
        str(total["attendee_lists"]),
        "",
        end_section=True,
    )
    console.print(table)
    if summary["blocked_by"]:
        blocked = Table(title="Blocked (not removed)", title_justify="left")
        blocked.add_column("blocked by")
        blocked.add_column("removals", justify="right")
        for by, count in summary["blocked_by"].items():
            blocked.add_row(by, str(count))
        console.print(blocked)
    if summary["unknown"]:
        console.print(
            f"[yellow]{summary['unknown']} sessions have unknown fields and are not removed[/] "
            "(see `unknown` in --format json)"
        )
    for violation in violations:
        console.print(f"[red]over a cap:[/] {violation.describe()}")


def write_plan_json(document: Mapping[str, Any], out: IO[str]) -> None:
    """The plan document as pretty, stable JSON."""
    json.dump(document, out, indent=2, sort_keys=False, ensure_ascii=False)
    out.write("\n")


def write_plan_csv(document: Mapping[str, Any], out: IO[str]) -> None:
    """One row per planned removal (`kind` removal), then per blocked removal (`blocked`, with
    its `by`) and per session kept for unknown fields (`unknown`), with stable column names."""
    writer = csv.DictWriter(out, fieldnames=ITEM_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for kind, key in (("removal", "items"), ("blocked", "blocked"), ("unknown", "unknown")):
        for entry in document.get(key, ()):
            writer.writerow({"kind": kind, **{k: _cell(v) for k, v in entry.items()}})


def _cell(value: Any) -> str:
    """A CSV cell: lists joined with `;`, nothing for null, free text never a formula."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ";".join(str(part) for part in value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_execution(report: ExecutionReport, console: Console) -> None:
    """What a run did: outcomes by kind, the failures, and why it stopped early if it did."""
    parts = [f"{count} {outcome}" for outcome, count in sorted(report.outcomes.items())]
    console.print("Outcomes: " + (", ".join(parts) if parts else "nothing to do"))
    for failure in report.failures[:20]:
        console.print(f"  [red]failed[/] {failure}")
    if len(report.failures) > 20:
        console.print(f"  … and {len(report.failures) - 20} more (see `retention audit show`)")
    if report.halted:
        console.print(f"[red]halted:[/] {report.halted}; {report.not_started} items not started")
