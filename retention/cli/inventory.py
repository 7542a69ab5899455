"""`retention inventory`: scan the account into the state database and show what it holds."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table
from sqlite_utils import Database

from retention.cli.app import cli
from retention.engine.inventory import InventorySummary, count_summary
from retention.engine.scan import Progress as ScanProgress
from retention.engine.scan import ScanReport, scan
from retention.engine.state import open_state_db
from retention.errors import RuntimeFailure
from retention.goto.client import GoToClient
from retention.goto.factory import client_from_settings
from retention.service.lock import acquire
from retention.service.logging import configure_logging, register_secret, register_settings_secrets
from retention.settings import Settings, load_settings

_SHOWN_INCOMPLETE = 10


class ScanIncomplete(RuntimeFailure):
    """Some organizers or windows could not be read; their watermarks did not move."""


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
    start = settings.scan_start_time
    with acquire(settings.state_dir, command="retention inventory"):
        db = open_state_db(settings.state_db)
        report = asyncio.run(_scan(settings, db, full=full, start=start))
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


async def _scan(settings: Settings, db: Database, *, full: bool, start: datetime) -> ScanReport:
    async with client_from_settings(settings, on_secret=register_secret) as client:
        if not sys.stderr.isatty():
            return await _run(client, db, settings, full=full, start=start)
        columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("scanning", total=None)

            def advance(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await _run(client, db, settings, full=full, start=start, progress=advance)


async def _run(
    client: GoToClient,
    db: Database,
    settings: Settings,
    *,
    full: bool,
    start: datetime,
    progress: ScanProgress | None = None,
) -> ScanReport:
    return await scan(
        client,
        db,
        # The command is the edge where the clock is read; everything below takes it as input.
        now=datetime.now(UTC),
        window_days=settings.scan_window_days,
        start=start,
        settle=timedelta(hours=settings.settle_hours),
        full=full,
        concurrency=settings.concurrency,
        progress=progress,
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
