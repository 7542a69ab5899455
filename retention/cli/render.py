"""Rendering plans and run results for people (rich tables) and for tools (JSON, CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console

from retention.cli.tables import FitTable, say
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
    say(
        console,
        f"Plan {document['plan_id']} as of {document['as_of']}: "
        f"{summary['sessions_scanned']} sessions scanned, {summary['items']} removals planned",
    )
    table = FitTable("Removals by policy")
    table.column("policy", "words")
    for column in ("sessions", "recordings", "size", "attendee lists", "in scope"):
        table.column(column, "number")
    for name, totals in summary["per_policy"].items():
        table.row(
            name,
            str(totals["sessions"]),
            str(totals["recordings"]),
            format_bytes(totals["recording_bytes"]),
            str(totals["attendee_lists"]),
            str(totals["in_scope"]),
        )
    total = summary["total"]
    table.row(
        "total",
        str(total["sessions"]),
        str(total["recordings"]),
        format_bytes(total["recording_bytes"]),
        str(total["attendee_lists"]),
        "",
        style="bold",
        section=True,
    )
    table.print(console)
    if summary["blocked_by"]:
        blocked = FitTable("Blocked (not removed)")
        blocked.column("blocked by", "words")
        blocked.column("removals", "number")
        for by, count in summary["blocked_by"].items():
            blocked.row(by, str(count))
        blocked.print(console)
    if summary["unknown"]:
        say(
            console,
            f"{summary['unknown']} sessions have unknown fields and are not removed "
            "(see `unknown` in --format json)",
            style="yellow",
        )
    for violation in violations:
        say(console, f"over a cap: {violation.describe()}", style="red")


def render_plan_items(document: Mapping[str, Any], console: Console) -> None:
    """Each planned removal, each blocked one with what blocks it, each session kept unknown."""
    if document.get("items"):
        table = FitTable("Removals")
        _item_columns(table, ("action", "policy"))
        for item in document["items"]:
            table.row(*_item_cells(item), item["action"], item["policy"])
        table.print(console)
    if document.get("blocked"):
        table = FitTable("Blocked (not removed)")
        _item_columns(table, ("action", "blocked by", "until"))
        for entry in document["blocked"]:
            until = _minute(entry.get("until"))
            table.row(*_item_cells(entry), entry["action"], entry["by"], until)
        table.print(console)
    if document.get("unknown"):
        table = FitTable("Unknown (not removed)")
        _item_columns(table, ("missing",))
        for entry in document["unknown"]:
            table.row(*_item_cells(entry), ", ".join(entry.get("fields") or ()) or "-")
        table.print(console)


def _item_columns(table: FitTable, last: Sequence[str]) -> None:
    table.column("session", "number")
    table.column("organizer", "words")
    table.column("ended", "words")
    for name in last:
        table.column(name, "words")


def _item_cells(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    organizer = entry.get("organizer_email") or str(entry.get("organizerKey", "-"))
    return str(entry["sessionId"]), organizer, _minute(entry.get("endTime"))


def _minute(moment: str | None) -> str:
    """A stored time (`2026-09-14T10:05:00Z`) to the minute, as people read it."""
    return "-" if not moment else f"{moment[:10]} {moment[11:16]}"


def removal_summary(document: Mapping[str, Any]) -> str:
    """What a plan removes, counted per action so that the parts add up to the total.

    `58 removals on 55 sessions: 12 recordings (5.5 GiB), 46 attendee lists, 0 whole sessions`:
    a session may lose its recording and its attendee list, so sessions are counted apart.
    """
    items = document["items"]
    per_action = {"delete_recordings": 0, "delete_attendees": 0, "delete_session": 0}
    recording_bytes = {"delete_recordings": 0, "delete_session": 0}
    recordings_in_sessions = 0
    for item in items:
        action = item["action"]
        per_action[action] = per_action.get(action, 0) + 1
        if action in recording_bytes:
            recording_bytes[action] += item.get("recording_bytes") or 0
        if action == "delete_session" and item.get("recordingId"):
            recordings_in_sessions += 1
    sessions = len({item["sessionId"] for item in items})
    whole = per_action["delete_session"]
    text = (
        f"{len(items)} {_plural(len(items), 'removal')} on {sessions} distinct "
        f"{_plural(sessions, 'session')}: {per_action['delete_recordings']} "
        f"{_plural(per_action['delete_recordings'], 'recording')} "
        f"({format_bytes(recording_bytes['delete_recordings'])}), "
        f"{per_action['delete_attendees']} attendee "
        f"{_plural(per_action['delete_attendees'], 'list')}, "
        f"{whole} whole {_plural(whole, 'session')}"
    )
    if recordings_in_sessions:
        text += (
            f" (with {recordings_in_sessions} "
            f"{_plural(recordings_in_sessions, 'recording')}, "
            f"{format_bytes(recording_bytes['delete_session'])})"
        )
    return text


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else f"{noun}s"


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
    say(console, "Outcomes: " + (", ".join(parts) if parts else "nothing to do"))
    for failure in report.failures[:20]:
        say(console, f"  failed {failure}", style="red", indent="    ")
    if len(report.failures) > 20:
        say(console, f"  … and {len(report.failures) - 20} more (see `retention audit show`)")
    if report.halted:
        say(
            console, f"halted: {report.halted}; {report.not_started} items not started", style="red"
        )
