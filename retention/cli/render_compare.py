"""Rendering a policy change for people (a table, a pull-request comment) and tools (JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console

from retention.cli.render import write_plan_json
from retention.cli.tables import FitTable, say
from retention.engine.compare import PlanChange
from retention.engine.plan import Plan
from retention.units import format_age

# A pull-request comment lists this many items per list, then says how many more there are.
MARKDOWN_ITEMS = 20
TABLE_ITEMS = 20


def change_document(change: PlanChange, base_dir: str, plan: Plan) -> dict[str, Any]:
    """The JSON form: what was compared, then `added`, `dropped`, `by_policy`, `blocking`."""
    return {
        "base": base_dir,
        "as_of": plan.document()["as_of"],
        "offline": plan.offline,
        "inventory_age_s": plan.inventory_age_s,
        "sessions_scanned": plan.scanned,
        **change.document(),
    }


def age_text(seconds: int | None) -> str:
    """An age for people: `45 s old`, `12 min old`, `5 h 3 min old`, `2 d 4 h old`."""
    return "of unknown age" if seconds is None else f"{format_age(seconds)} old"


def write_change_json(document: Mapping[str, Any], out: IO[str]) -> None:
    write_plan_json(document, out)


def _item_line(item: Mapping[str, Any]) -> str:
    who = item.get("organizer_email") or f"organizer {item['organizerKey']}"
    group = f", {item['group']}" if item.get("group") else ""
    return (
        f"{item['action']} of session {item['sessionId']} ({who}{group}, started "
        f"{item.get('startTime') or 'unknown'}) under {item['policy']}"
    )


def _blocker_line(entry: Mapping[str, Any]) -> str:
    return (
        f"{entry['by']} on {entry['action']} of session {entry['sessionId']} "
        f"(called for by {entry['policy']}, started {entry.get('startTime') or 'unknown'})"
    )


def _md(text: str) -> str:
    """Text safe in a markdown table cell or list item."""
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def change_markdown(document: Mapping[str, Any]) -> str:
    """A comment for a pull request: a heading, a table per policy, capped lists of items."""
    added, dropped = document["added"], document["dropped"]
    started, stopped = document["blocking"]["started"], document["blocking"]["stopped"]
    age = document.get("inventory_age_s")
    lines = [
        f"### Retention policy change: {len(added)} removals added, {len(dropped)} dropped",
        "",
        f"Compared with `{_md(str(document['base']))}` as of {document['as_of']}, on "
        f"{document['sessions_scanned']} sessions"
        + (f" (offline, on an inventory {age_text(age)})" if document.get("offline") else "")
        + ".",
        "",
    ]
    if document["by_policy"]:
        lines += ["| policy | added | dropped |", "|---|---:|---:|"]
        lines += [
            f"| {_md(name)} | {counts['added']} | {counts['dropped']} |"
            for name, counts in document["by_policy"].items()
        ]
    else:
        lines.append("No removal is added or dropped.")
    lines.append("")
    if started or stopped:
        lines += [
            f"Holds and retain rules: {len(started)} start blocking a removal, "
            f"{len(stopped)} stop.",
            "",
        ]
    for title, entries, line in (
        ("Added removals", added, _item_line),
        ("Dropped removals", dropped, _item_line),
        ("Blocking starts", started, _blocker_line),
        ("Blocking stops", stopped, _blocker_line),
    ):
        lines += _md_list(title, entries, line)
    return "\n".join(lines).rstrip() + "\n"


def _md_list(title: str, entries: Sequence[Mapping[str, Any]], line: Any) -> list[str]:
    """A folded list (GitHub's <details>) of the first entries, then how many more."""
    if not entries:
        return []
    shown = [f"- {_md(line(entry))}" for entry in entries[:MARKDOWN_ITEMS]]
    more = len(entries) - len(shown)
    return [
        f"<details><summary>{title} ({len(entries)})</summary>",
        "",
        *shown,
        *([f"- … and {more} more"] if more else []),
        "",
        "</details>",
        "",
    ]


def render_change_table(document: Mapping[str, Any], console: Console) -> None:
    """The change for a terminal: counts per policy, then the first items of each list."""
    added, dropped = document["added"], document["dropped"]
    started, stopped = document["blocking"]["started"], document["blocking"]["stopped"]
    say(
        console,
        f"Change against {document['base']} as of {document['as_of']}: "
        f"{len(added)} removals added, {len(dropped)} dropped; blocking "
        f"{len(started)} started, {len(stopped)} stopped",
    )
    if document["by_policy"]:
        table = FitTable(title="Removals by policy")
        table.column("policy", "words")
        table.column("added", "number")
        table.column("dropped", "number")
        for name, counts in document["by_policy"].items():
            table.row(name, str(counts["added"]), str(counts["dropped"]))
        table.print(console)
    for title, entries, line in (
        ("added", added, _item_line),
        ("dropped", dropped, _item_line),
        ("blocking starts", started, _blocker_line),
        ("blocking stops", stopped, _blocker_line),
    ):
        for entry in entries[:TABLE_ITEMS]:
            say(console, f"  {title}: {line(entry)}")
        if len(entries) > TABLE_ITEMS:
            say(console, f"  {title}: … and {len(entries) - TABLE_ITEMS} more (--format json)")
