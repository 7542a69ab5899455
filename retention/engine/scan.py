"""The scan: read every organizer's history in date windows into the inventory, failing closed.

Per group of at most 50 organizers, one group-history call per window tells who met; only
those organizers get per-organizer calls (group history has no session ids). A window that
still fails after the client's retries is reported and never marked scanned: an error is not
"no meetings". Watermarks per organizer make the next scan read only newer windows.

Below its watermark an organizer is read again only when the group history shows a reason:
a meeting the inventory does not hold (one still running at the last scan shows up now, up to
`RUNNING_LOOKBACK` back), or one that had ended less than `settle` before the last scan and was
stored without a recording (recordings appear after a meeting ends). Organizers outside the
prefilter re-read the whole lookback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlite_utils import Database

from retention.engine import inventory
from retention.engine.inventory import WindowResult, to_text
from retention.engine.sanity import distrust_contradictions
from retention.engine.windows import (
    advance_watermarks,
    begin_scan,
    end_scan,
    held_sessions,
    note_problem,
    reading_starts,
    watermarks,
    windows,
)
from retention.goto.client import GoToClient
from retention.goto.errors import ApiError
from retention.goto.models import Group, GroupMeeting, Organizer
from retention.goto.stats import RequestStats

log = structlog.get_logger(__name__)
# Each problem is logged up to this many; the scan_problems table keeps the dropped rows.
_PROBLEMS_LOGGED = 20
GROUP_HISTORY_LIMIT = 50
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IncompleteWindow:
    """A window (or a whole organizer) the scan could not read; it stays unscanned."""

    organizer_key: int | None
    start: datetime | None
    end: datetime | None
    error: str

    def describe(self) -> str:
        """One line for the report."""
        who = f"organizer {self.organizer_key}" if self.organizer_key else "an organizer"
        when = f" {to_text(self.start)} .. {to_text(self.end)}" if self.start else ""
        return f"{who}{when}: {self.error}"


@dataclass
class ScanReport:
    """What one scan read, skipped, dropped and could not read."""

    scan_id: int
    full: bool
    organizers: int = 0
    groups_prefiltered: int = 0
    windows_read: int = 0
    windows_skipped: int = 0
    sessions_seen: int = 0
    sessions_dropped: int = 0
    problems: list[str] = field(default_factory=list)
    incomplete: list[IncompleteWindow] = field(default_factory=list)
    requests: RequestStats = field(default_factory=RequestStats)

    @property
    def complete(self) -> bool:
        """Whether every window of every organizer was read."""
        return not self.incomplete


@dataclass(frozen=True)
class _GroupWindow:
    group: Group
    members: list[Organizer]
    start: datetime
    end: datetime


@dataclass(frozen=True)
class _OrganizerWindow:
    organizer: Organizer
    start: datetime
    end: datetime


async def scan(
    client: GoToClient,
    db: Database,
    *,
    now: datetime,
    window_days: int,
    start: datetime,
    settle: timedelta,
    full: bool,
    concurrency: int,
    progress: Progress | None = None,
    prefilter: bool = True,
) -> ScanReport:
    """Scan the account into `db`; see the module docstring. Raises ApiError only when the
    organizer or group listing itself cannot be read. `prefilter=False` reads every organizer's
    every window (the benchmark's baseline)."""
    before = client.stats.snapshot()
    scan_id = begin_scan(db, now, full)
    report = ScanReport(scan_id, full)
    organizers = await client.organizers()
    groups = await client.groups()
    for problem in [*organizers.problems, *groups.problems]:
        note_problem(db, report.problems, scan_id, problem, now)
        if problem.dropped and problem.endpoint.endswith("/organizers"):
            report.incomplete.append(IncompleteWindow(None, None, None, problem.describe()))
    inventory.store_directory(db, organizers.items, groups.items, now)
    report.organizers = len(organizers.items)
    run = _Run(client, db, report, now=now, window_days=window_days, progress=progress)
    run.settle = settle
    run.marks = {} if full else watermarks(db)
    run.plan(
        organizers.items,
        groups.items if prefilter else [],
        reading_starts(run.marks, organizers.items, start=start, settle=settle, now=now),
    )
    await run.execute(concurrency)
    run.finish(full)
    report.requests = client.stats.since(before)
    incomplete = [window.describe() for window in report.incomplete]
    end_scan(db, scan_id, calls=report.requests.calls, incomplete=incomplete, now=now)
    log.info(
        "scan finished",
        full=full,
        organizers=report.organizers,
        windows_read=report.windows_read,
        windows_skipped=report.windows_skipped,
        sessions=report.sessions_seen,
        dropped=report.sessions_dropped,
        incomplete=len(report.incomplete),
        problems=len(report.problems),
        requests=report.requests.requests,
    )
    for described in report.problems[:_PROBLEMS_LOGGED]:
        log.warning("the API sent a row that could not be fully read", problem=described)
    if len(report.problems) > _PROBLEMS_LOGGED:
        log.warning(
            "more rows could not be fully read", more=len(report.problems) - _PROBLEMS_LOGGED
        )
    return report


class _Run:
    """One scan's work queue, its workers, and what they found."""

    def __init__(
        self,
        client: GoToClient,
        db: Database,
        report: ScanReport,
        *,
        now: datetime,
        window_days: int,
        progress: Progress | None,
    ) -> None:
        self.client = client
        self.db = db
        self.report = report
        self.now = now
        self.window_days = window_days
        self.progress = progress
        self.queue: asyncio.Queue[_GroupWindow | _OrganizerWindow] = asyncio.Queue()
        self.total = 0
        self.done = 0
        self.needed: dict[int, datetime] = {}
        self.failed_from: dict[int, datetime] = {}
        self.marks: dict[int, datetime] = {}
        self.settle = timedelta(0)

    def plan(
        self, organizers: list[Organizer], groups: list[Group], needed: dict[int, datetime]
    ) -> None:
        """Queue group windows for small groups, organizer windows for everyone else."""
        self.needed = needed
        members: dict[int, list[Organizer]] = {}
        for organizer in organizers:
            if organizer.group_key is not None:
                members.setdefault(organizer.group_key, []).append(organizer)
        prefiltered: set[int] = set()
        for group in groups:
            group_members = [
                m for m in members.get(group.group_key, []) if m.organizer_key in needed
            ]
            if not group_members or not _prefilter_fits(group, members.get(group.group_key, [])):
                continue
            prefiltered.update(m.organizer_key for m in group_members)
            self.report.groups_prefiltered += 1
            begin = min(needed[m.organizer_key] for m in group_members)
            for window_start, window_end in windows(begin, self.now, self.window_days):
                self._put(_GroupWindow(group, group_members, window_start, window_end))
        for organizer in organizers:
            key = organizer.organizer_key
            if key in needed and key not in prefiltered:
                for window_start, window_end in windows(needed[key], self.now, self.window_days):
                    self._put(_OrganizerWindow(organizer, window_start, window_end))

    def _put(self, unit: _GroupWindow | _OrganizerWindow) -> None:
        self.total += 1
        self.queue.put_nowait(unit)

    async def execute(self, concurrency: int) -> None:
        """Run `concurrency` workers until the queue (which group windows refill) is empty."""
        async with asyncio.TaskGroup() as tasks:
            workers = [tasks.create_task(self._worker()) for _ in range(concurrency)]
            await self.queue.join()
            for worker in workers:
                worker.cancel()

    async def _worker(self) -> None:
        while True:
            unit = await self.queue.get()
            try:
                if isinstance(unit, _GroupWindow):
                    await self._group_window(unit)
                else:
                    await self._organizer_window(unit)
            finally:
                self.done += 1
                self.queue.task_done()
                if self.progress is not None:
                    self.progress(self.done, self.total)

    async def _group_window(self, unit: _GroupWindow) -> None:
        due = [m for m in unit.members if self.needed[m.organizer_key] < unit.end]
        try:
            result = await self.client.group_history(unit.group.group_key, unit.start, unit.end)
        except ApiError as exc:
            log.warning(
                "group window unreadable, reading its organizers one by one", error=str(exc)
            )
            met = to_read = {m.organizer_key for m in due}
        else:
            met = {meeting.organizer_key for meeting in result.items}
            to_read = self._to_read(unit, result.items)
            if any(problem.dropped for problem in result.problems):
                # A meeting whose organizer cannot be read could be anyone's.
                met = to_read = {m.organizer_key for m in due}
            for problem in result.problems:
                note_problem(self.db, self.report.problems, self.report.scan_id, problem, self.now)
        for organizer in due:
            if organizer.organizer_key in to_read:
                self._put(_OrganizerWindow(organizer, unit.start, unit.end))
            elif organizer.organizer_key in met:
                # Met, but only in meetings the inventory already holds, settled.
                self.report.windows_skipped += 1
            else:
                self.report.windows_skipped += 1
                empty = WindowResult(organizer, unit.start, unit.end, [])
                self.report.sessions_dropped += inventory.store_window(
                    self.db, empty, self.report.scan_id, self.now
                )

    def _to_read(self, unit: _GroupWindow, meetings: list[GroupMeeting]) -> set[int]:
        """Organizers whose history in this window may differ from what the inventory holds."""
        held = held_sessions(self.db, [m.organizer_key for m in unit.members], unit.start)
        to_read: set[int] = set()
        for meeting in meetings:
            key = meeting.organizer_key
            mark = self.marks.get(key)
            if mark is None or meeting.start_time is None or meeting.start_time >= mark:
                to_read.add(key)
                continue
            stored = held.get((key, meeting.meeting_id, to_text(meeting.start_time)))
            settling = meeting.end_time is None or meeting.end_time > mark - self.settle
            if stored is None or (settling and not stored):
                to_read.add(key)
        return to_read

    async def _organizer_window(self, unit: _OrganizerWindow) -> None:
        key = unit.organizer.organizer_key
        try:
            result = await self.client.organizer_history(key, unit.start, unit.end)
        except ApiError as exc:
            self.report.incomplete.append(IncompleteWindow(key, unit.start, unit.end, str(exc)))
            earliest = self.failed_from.get(key)
            self.failed_from[key] = unit.start if earliest is None else min(earliest, unit.start)
            return
        window = WindowResult(unit.organizer, unit.start, unit.end, result.items, result.problems)
        window = distrust_contradictions(self.db, window, self.report.scan_id, self.now)
        self.report.sessions_dropped += inventory.store_window(
            self.db, window, self.report.scan_id, self.now
        )
        self.report.windows_read += 1
        self.report.sessions_seen += len(result.items)
        for problem in window.problems:
            note_problem(self.db, self.report.problems, self.report.scan_id, problem, self.now)

    def finish(self, full: bool) -> None:
        """Advance watermarks over what was read; after a full scan drop what is gone."""
        advance_watermarks(self.db, self.needed, self.failed_from, self.now)
        if full:
            complete = [key for key in self.needed if key not in self.failed_from]
            self.report.sessions_dropped += inventory.drop_unseen(
                self.db, complete, self.report.scan_id
            )
            if self.report.complete:
                self.report.sessions_dropped += inventory.drop_organizers_gone(self.db)
                # Every window was read: a session read with one identity throughout is
                # trusted again.
                inventory.settle_conflicts(self.db, self.report.scan_id)


def _prefilter_fits(group: Group, members: list[Organizer]) -> bool:
    """Group history serves groups of at most 50, and only when the listing agrees on size."""
    size = group.num_organizers
    return size is not None and 0 < size <= GROUP_HISTORY_LIMIT and size == len(members)
