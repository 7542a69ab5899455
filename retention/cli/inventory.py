"""`retention inventory`: scan the account into the state database and show what it holds."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from sqlite_utils import Database

from retention.cli.app import cli
from retention.cli.listing import print_listing, read_listing
from retention.cli.tables import FitTable, console_for
from retention.engine.inventory import InventorySummary, count_summary
from retention.engine.scan import ScanReport
from retention.errors import InvalidInput
from retention.service.context import RunContext
from retention.service.context import client as client_of
from retention.service.logging import configure_logging, register_settings_secrets
from retention.service.progress import progress_logged
from retention.service.reading import ScanIncomplete, scan_as_set
from retention.service.statedir import locked
from retention.settings import load_settings
from retention.units import format_bytes

_SHOWN_INCOMPLETE = 10


@cli.command("inventory")
@click.option("--full", is_flag=True, help="Rescan all history and drop sessions no longer there.")
@click.option(
    "--list",
    "listing",
    type=click.Choice(["organizers", "groups"]),
    help="List the organizers or groups a hold may name, from the last inventory (no scan).",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="csv goes with --list.",
)
def inventory_command(full: bool, listing: str | None, output: str) -> None:
    """Scan every organizer's history into the inventory and print its counts.

    Exits 1 when any window could not be read (those windows are listed and rescanned next
    time); the counts printed are then those of what the inventory holds. With --list, prints
    the organizers or groups of the last inventory and its age, without scanning.
    """
    configure_logging()
    settings = load_settings()
    register_settings_secrets(settings)
    if listing is not None:
        if full:
            raise InvalidInput("--list reads the last inventory; --full scans: give one of them")
        print_listing(read_listing(settings.state_db, listing), output, datetime.now(UTC))
        return
    if output == "csv":
        raise InvalidInput("--format csv lists organizers or groups", hint="add --list organizers")
    report, summary = asyncio.run(_inventory(RunContext(settings), full=full))
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


async def _inventory(ctx: RunContext, *, full: bool) -> tuple[ScanReport, InventorySummary]:
    async with locked(ctx.settings, command="retention inventory") as db:
        return await _scan(ctx, db, full=full), count_summary(db)


async def _scan(ctx: RunContext, db: Database, *, full: bool) -> ScanReport:
    async with client_of(ctx) as client:
        if not sys.stderr.isatty():
            with progress_logged() as logged:
                report = None
                if logged is not None:
                    logged.update("scan", "windows", 0)  # lines from before the first window
                    report = logged.reporter("scan", "windows")
                return await scan_as_set(
                    client, db, ctx.settings, now=ctx.clock(), full=full, progress=report
                )
        columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console_for(stderr=True), transient=True) as bar:
            task = bar.add_task("scanning", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await scan_as_set(
                client, db, ctx.settings, now=ctx.clock(), full=full, progress=advance
            )


def _print_table(summary: InventorySummary) -> None:
    table = FitTable("Inventory")
    table.column("group", "words")
    for column in ("organizers", "sessions", "recordings", "size", "attendee lists"):
        table.column(column, "number")
    for group in summary.groups:
        name = group.name or ("(no group)" if group.group_key is None else str(group.group_key))
        counts = group.counts
        table.row(
            name,
            str(counts.organizers),
            str(counts.sessions),
            str(counts.recordings),
            format_bytes(counts.recording_bytes),
            str(counts.attendee_lists),
        )
    total = summary.total
    table.row(
        "total",
        str(total.organizers),
        str(total.sessions),
        str(total.recordings),
        format_bytes(total.recording_bytes),
        str(total.attendee_lists),
        style="bold",
        section=True,
    )
    table.print(console_for())
