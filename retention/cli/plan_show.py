"""`retention plan show`: a plan file or a proposal as `plan` shows a plan, with its approvals."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from retention.approvals.proposals import Proposal
from retention.approvals.store import Tally, approvals_needed
from retention.cli.planning import plan_notes
from retention.cli.render import render_plan_items, render_plan_table, write_plan_json
from retention.cli.tables import console_for, say
from retention.engine.planfile import LoadedPlan, load_plan_file
from retention.errors import Refused
from retention.settings import load_settings

_LISTS = ("items", "blocked", "unknown")


@click.command("show")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--items", "with_items", is_flag=True, help="List each removal, blocked or unknown.")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")
def show_command(plan_file: Path, with_items: bool, output: str) -> None:
    """Show a plan file or a proposal as `plan` would, with its approvals.

    It reads the file (and its approvals) only: the API is never called. An altered file is
    refused (exit 3).
    """
    loaded = unaltered(plan_file)
    settings = load_settings()
    tally = Proposal(plan_file, loaded).tally(settings)
    needed = approvals_needed(settings)
    if output == "json":
        write_plan_json(_shown(loaded, tally, needed, with_items), sys.stdout)
        return
    console = console_for()
    render_plan_table(loaded.document, console)
    for note in plan_notes(loaded.document, loaded.refused):
        say(console, note)
    _say_approvals(tally, needed, console)
    if with_items:
        render_plan_items(loaded.document, console)


def unaltered(plan_file: Path) -> LoadedPlan:
    """The plan file read back, refused (exit 3) when its content is not what was written."""
    loaded = load_plan_file(plan_file)
    altered = loaded.alteration()
    if altered is not None:
        raise Refused(
            f"{plan_file}: {altered}",
            hint="trust only a plan file as `retention plan --out` or the daemon wrote it;"
            " make a new plan",
            reason="changed_plan",
        )
    return loaded


def _shown(loaded: LoadedPlan, tally: Tally, needed: int, with_items: bool) -> dict[str, Any]:
    document = {
        key: value for key, value in loaded.document.items() if with_items or key not in _LISTS
    }
    return {
        "file": loaded.path,
        "approvals": {
            "valid": len(tally.valid),
            "needed": needed,
            "principals": tally.principals,
            "not_counted": tally.rejected,
        },
        "plan": document,
    }


def _say_approvals(tally: Tally, needed: int, console: Console) -> None:
    say(console, f"approvals: {tally.summary(needed)}")
    for rejected in tally.rejected:
        say(console, f"not counted: {rejected}", style="yellow")
