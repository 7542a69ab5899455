"""The re-read before sending: organizers, their groups and only the windows holding the items.

One organizer listing, one group listing, then one organizer-history call per organizer and
window that holds plan items (never one per item), stored into the inventory the way a scan
stores them, so that `recheck` reads each session as the API shows it now. Windows start at the
first item not yet covered and span `window_days`, so a plan whose items cluster costs few calls.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlite_utils import Database

from retention.engine import inventory
from retention.engine.execute import Verdict
from retention.engine.inventory import WindowResult, to_text
from retention.engine.planitem import PlanItem
from retention.engine.recheck import Rechecker
from retention.engine.records import SessionRecord
from retention.engine.sanity import distrust_contradictions
from retention.goto.client import GoToClient
from retention.goto.errors import ApiError
from retention.goto.models import Organizer


@dataclass(frozen=True)
class Window:
    """One organizer's history window [start, end) and the plan's sessions in it."""

    organizer_key: int
    start: datetime
    end: datetime
    session_ids: tuple[int, ...]


@dataclass
class Refreshed:
    """What the re-read did, and the sessions whose facts it could not read again."""

    windows: list[Window] = field(default_factory=list)
    requests: int = 0
    calls: int = 0
    unread: dict[int, str] = field(default_factory=dict)

    def verdict(self, item: PlanItem, db: Database, rechecker: Rechecker, now: datetime) -> Verdict:
        """The item decided again on its session as re-read; unread facts send nothing."""
        reason = self.unread.get(item.session_id)
        if reason is not None:
            return Verdict("skipped_changed", f"could not be read again: {reason}")
        return rechecker(item, fresh_record(db, item.session_id), now)


def fresh_record(db: Database, session_id: int) -> SessionRecord | None:
    """The session as the inventory now holds it; None when the re-read did not list it."""
    found = inventory.session_record(db, session_id)
    if found is None or _removed(db, session_id):
        return None
    return found


def _removed(db: Database, session_id: int) -> bool:
    row = db.execute(
        "SELECT removed_at FROM sessions WHERE session_id = ?", [str(session_id)]
    ).fetchone()
    return row is not None and row[0] is not None


def item_windows(items: Iterable[PlanItem], window_days: int) -> list[Window]:
    """Per organizer, the fewest windows of `window_days` that cover its items' start times."""
    starts: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for item in items:
        if item.start_time is not None:
            starts[item.organizer_key].append((item.start_time, item.session_id))
    span = timedelta(days=window_days)
    found: list[Window] = []
    for organizer_key in sorted(starts):
        found.extend(_cover(organizer_key, sorted(set(starts[organizer_key])), span))
    return found


def _cover(
    organizer_key: int, starts: list[tuple[datetime, int]], span: timedelta
) -> Iterator[Window]:
    index = 0
    while index < len(starts):
        begin = starts[index][0]
        end = begin + span
        inside: list[int] = []
        while index < len(starts) and starts[index][0] < end:
            inside.append(starts[index][1])
            index += 1
        yield Window(organizer_key, begin, end, tuple(dict.fromkeys(inside)))


async def refresh_items(
    items: Sequence[PlanItem],
    client: GoToClient,
    db: Database,
    *,
    now: datetime,
    window_days: int,
    concurrency: int = 4,
) -> Refreshed:
    """Re-read the organizers, their groups and the items' windows into the inventory.

    A listing that fails raises the client's ApiError (nothing can be decided again); a window
    that fails leaves its sessions unread, and they are not sent.
    """
    before = client.stats.snapshot()
    refreshed = Refreshed(windows=item_windows(items, window_days))
    organizers = await client.organizers()
    groups = await client.groups()
    inventory.store_directory(db, organizers.items, groups.items, now)
    listed = {organizer.organizer_key: organizer for organizer in organizers.items}
    scan_id = _begin(db, now)
    for item in items:
        if item.start_time is None:
            refreshed.unread[item.session_id] = "its start time is unknown"
        elif item.organizer_key not in listed:
            refreshed.unread[item.session_id] = f"organizer {item.organizer_key} is not listed"
    slots = asyncio.Semaphore(concurrency)

    async def read(window: Window) -> None:
        organizer = listed.get(window.organizer_key)
        if organizer is None:
            return
        async with slots:
            await _read_window(client, db, refreshed, organizer, window, scan_id=scan_id, now=now)

    async with asyncio.TaskGroup() as tasks:
        for window in refreshed.windows:
            tasks.create_task(read(window))
    spent = client.stats.since(before)
    refreshed.requests, refreshed.calls = spent.requests, spent.calls
    db.table("scans").update(
        scan_id, {"finished_at": to_text(now), "calls": spent.calls, "complete": 0}
    )
    return refreshed


async def _read_window(
    client: GoToClient,
    db: Database,
    refreshed: Refreshed,
    organizer: Organizer,
    window: Window,
    *,
    scan_id: int,
    now: datetime,
) -> None:
    try:
        result = await client.organizer_history(organizer.organizer_key, window.start, window.end)
    except ApiError as exc:
        for session_id in window.session_ids:
            refreshed.unread[session_id] = str(exc)
        return
    returned = {session.session_id for session in result.items}
    read = WindowResult(organizer, window.start, window.end, result.items, result.problems)
    # The same distrust as the scan's: fresh facts the API contradicts are unknown facts.
    inventory.store_window(db, distrust_contradictions(db, read, scan_id, now), scan_id, now)
    if any(problem.dropped for problem in result.problems):
        for session_id in window.session_ids:
            if session_id not in returned:
                refreshed.unread[session_id] = "the API sent a row that could not be read"


def _begin(db: Database, now: datetime) -> int:
    table = db.table("scans")
    table.insert({"started_at": to_text(now), "full": 0, "complete": 0})
    return int(str(table.last_pk))
