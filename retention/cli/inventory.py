"""`retention inventory`: scan the account into the state database and show what it holds."""

from __future__ import annotations

import asyncio
import json
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from sqlite_utils import Database

from retention.cli.app import cli
from retention.engine.inventory import InventorySummary, count_summary
from retention.engine.scan import ScanReport
from retention.engine.state import open_state_db
from retention.service.lock import acquire
from retention.service.logging import configure_logging, register_settings_secrets
from retention.service.pipeline import Pipeline
from retention.service.reading import ScanIncomplete, scan_as_set
from retention.settings import load_settings

_SHOWN_INCOMPLETE = 10


@cli.command("inventory")
@click.option("--full", is_flag=True, help="Rescan all history and drop sessions no longer there.")
@click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
def inventory_command(full: bool, output: str) -> None:
    """Scan every organizer's history into the inventory and print its counts.

    Exits 1 when any window could not be read (those windows are listed and rescanned next
    time); the counts printed are then those of what the inventory holds.
    """
    configure_logging()
    settings = load_settings()
    register_settings_secrets(settings)
    with acquire(settings.state_dir, command="retention inventory"):
        db = open_state_db(settings.state_db)
        report = asyncio.run(_scan(Pipeline(settings), db, full=full))
        summary = count_summary(db)
    if output == "json":
        click.echo(json.dumps(summary.as_json(), indent=2))
    else:
        _print_table(summary)
    if not report.complete:
        lines = [window.describe() for window in report.incomplete[:_SHOWN_INCOMPLETE]]
        more = len(report.incomplete) - len(lines)
        raise ScanIncomplete(
            f"the scan is incomplete: {len(report.incomplete)} window(s) could not be read:\n  "
            + "\n  ".join(lines)
            + (f"\n  … and {more} more" if more else ""),
            hint="these windows were not marked scanned; run `retention inventory` again",
        )


async def _scan(pipeline: Pipeline, db: Database, *, full: bool) -> ScanReport:
    async with pipeline.client() as client:
        if not sys.stderr.isatty():
            return await scan_as_set(client, db, pipeline.settings, now=pipeline.clock(), full=full)
        columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("scanning", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await scan_as_set(
                client, db, pipeline.settings, now=pipeline.clock(), full=full, progress=advance
            )


def _print_table(summary: InventorySummary) -> None:
    table = Table(title="Inventory")
    for column in (
        "group",
        "organizers",
        "sessions",
        "recordings",
        "recording bytes",
        "attendee lists",
    ):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group in summary.groups:
        name = group.name or ("(no group)" if group.group_key is None else str(group.group_key))
        counts = group.counts
        table.add_row(
            name,
            str(counts.organizers),
            str(counts.sessions),
            str(counts.recordings),
            str(counts.recording_bytes),
            str(counts.attendee_lists),
        )
    total = summary.total
    table.add_row(
        "total",
        str(total.organizers),
        str(total.sessions),
        str(total.recordings),
        str(total.recording_bytes),
        str(total.attendee_lists),
        style="bold",
    )
    Console().print(table)
