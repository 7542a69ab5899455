"""Rendering a policy change for people (a table, a pull-request comment) and tools (JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from retention.cli.render import write_plan_json
from retention.engine.compare import PlanChange
from retention.engine.plan import Plan

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
    if seconds is None:
        return "of unknown age"
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 120:
        return f"{seconds} s old"
    if hours < 1:
        return f"{minutes} min old"
    if hours < 48:
        return f"{hours} h {minutes % 60} min old"
    return f"{hours // 24} d {hours % 24} h old"


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
    console.print(
        f"Change against [bold]{escape(str(document['base']))}[/] as of {document['as_of']}: "
        f"{len(added)} removals added, {len(dropped)} dropped; blocking "
        f"{len(started)} started, {len(stopped)} stopped"
    )
    if document["by_policy"]:
        table = Table(title="Removals by policy", title_justify="left")
        table.add_column("policy", no_wrap=True)
        table.add_column("added", justify="right")
        table.add_column("dropped", justify="right")
        for name, counts in document["by_policy"].items():
            table.add_row(escape(name), str(counts["added"]), str(counts["dropped"]))
        console.print(table)
    for title, entries, line in (
        ("added", added, _item_line),
        ("dropped", dropped, _item_line),
        ("blocking starts", started, _blocker_line),
        ("blocking stops", stopped, _blocker_line),
    ):
        for entry in entries[:TABLE_ITEMS]:
            console.print(f"  {title}: {escape(line(entry))}")
        if len(entries) > TABLE_ITEMS:
            console.print(f"  {title}: … and {len(entries) - TABLE_ITEMS} more (--format json)")
