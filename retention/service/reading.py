"""Reading the account before a run decides: the scan as set, stoppable, refused if incomplete."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlite_utils import Database

from retention.engine.scan import Progress, ScanReport, scan
from retention.engine.stopping import GraceExpired, within_grace
from retention.errors import RuntimeFailure
from retention.goto.client import GoToClient
from retention.service.statedir import RunStopped
from retention.settings import Settings


class ScanIncomplete(RuntimeFailure):
    """Some organizers or windows could not be read; their watermarks did not move."""


async def scan_as_set(
    client: GoToClient,
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    full: bool = False,
    progress: Progress | None = None,
) -> ScanReport:
    """Scan the account into the inventory with the settings' windows, start and margin."""
    return await scan(
        client,
        db,
        now=now,
        window_days=settings.scan_window_days,
        start=settings.scan_start_time,
        settle=timedelta(hours=settings.settle_hours),
        full=full,
        concurrency=settings.concurrency,
        progress=progress,
    )


async def unless_stopped(
    scanning: Coroutine[Any, Any, ScanReport], stop: asyncio.Event
) -> ScanReport:
    """Scan, unless a stop comes first: reading is safe to abandon, nothing is removed yet."""
    try:
        return await within_grace(scanning, stop, 0)
    except GraceExpired:
        raise RunStopped(
            "the run was stopped while reading the inventory; nothing was removed",
            hint="the next run reads it again",
        ) from None


def require_complete(report: ScanReport) -> ScanReport:
    """The report of a scan that read every window; raise ScanIncomplete otherwise."""
    if not report.complete:
        shown = "; ".join(window.describe() for window in report.incomplete[:5])
        raise ScanIncomplete(
            f"the inventory is incomplete: {len(report.incomplete)} window(s) could not be "
            f"read ({shown}); nothing is planned from a partial view",
            hint="check the API's health and run again; unread windows are retried",
        )
    return report
