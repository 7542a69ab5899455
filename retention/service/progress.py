"""Progress off a terminal: a log line at least every 30 s of long work (done, total, rate, ETA).

A terminal shows a bar; piped output (cron, CI, a timer's journal) gets `progress` log lines
instead, so that an hour-long first scan is never silent. The work reports `(done, total)` as it
goes; a heartbeat thread writes the line when the interval has passed even if the work has not
reported since (one slow call, a long integrity check), so the lines keep coming.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import structlog

from retention.service.context import RunContext

INTERVAL_SECONDS = 30.0
# The heartbeat never looks again sooner than this, whatever the interval (no busy loop).
_SHORTEST_WAIT = 0.01
Clock = Callable[[], float]


class ProgressLog:
    """The progress of one unit of work at a time (`scan` in windows, `removals`, `verify` in
    rows), logged at most once per interval, by `update` or by the heartbeat's `tick`."""

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        interval: float | None = None,
        logger: Any | None = None,
    ) -> None:
        self.clock = clock
        self.interval = INTERVAL_SECONDS if interval is None else interval
        self.log = logger if logger is not None else structlog.get_logger("retention.progress")
        self._lock = threading.Lock()
        self._task: str | None = None
        self._unit = ""
        self._started = self._last = clock()
        self._done = 0
        self._total: int | None = None

    def reporter(self, task: str, unit: str) -> Callable[[int, int], None]:
        """The `(done, total)` callback of one task; its first report starts the task anew."""

        def report(done: int, total: int) -> None:
            self.update(task, unit, done, total)

        return report

    def update(self, task: str, unit: str, done: int, total: int | None = None) -> None:
        """Record how far `task` is; log a line if the interval has passed since the last."""
        with self._lock:
            if task != self._task:
                self._task, self._unit = task, unit
                self._started = self.clock()
                self._total = None
            self._done = done
            if total is not None:
                self._total = total
        self.tick()

    def due_in(self) -> float:
        """Seconds until the next line is due (0 or less: now)."""
        with self._lock:
            return self._last + self.interval - self.clock()

    def tick(self) -> bool:
        """Log the line when it is due, whether or not the work reported since the last one."""
        with self._lock:
            now = self.clock()
            if now - self._last < self.interval:
                return False
            self._last = now  # also with nothing to say yet: the heartbeat waits a whole interval
            if self._task is None:
                return False
            # Written under the lock: the lines come in the order of the counts they show.
            self.log.info("progress", **self._fields(now))
        return True

    def _fields(self, now: float) -> dict[str, Any]:
        elapsed = max(now - self._started, 0.0)
        rate = self._done / elapsed if elapsed > 0 else 0.0
        left = None if self._total is None else max(self._total - self._done, 0)
        return {
            "task": self._task,
            "done": self._done,
            "total": self._total,
            "unit": self._unit,
            "rate_per_s": round(rate, 2),
            "eta_s": round(left / rate) if left is not None and rate > 0 else None,
            "elapsed_s": round(elapsed),
        }


def beat(progress: ProgressLog, wait: Callable[[float], bool]) -> None:
    """The heartbeat's loop: wait until the next line is due, write it, until `wait` says
    stop (it returns True, as `threading.Event.wait` does once set)."""
    while not wait(max(progress.due_in(), _SHORTEST_WAIT)):
        progress.tick()


@contextlib.contextmanager
def progress_logged(
    stream: TextIO | None = None, *, clock: Clock = time.monotonic
) -> Iterator[ProgressLog | None]:
    """A ProgressLog with its heartbeat when `stream` (stderr) is not a terminal; None on a
    terminal, where a bar shows progress instead."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        yield None
        return
    progress = ProgressLog(clock=clock)
    stopped = threading.Event()
    heart = threading.Thread(
        target=beat, args=(progress, stopped.wait), name="progress", daemon=True
    )
    heart.start()
    try:
        yield progress
    finally:
        stopped.set()
        heart.join()


def logging_progress(ctx: RunContext, logged: ProgressLog | None) -> RunContext:
    """The run's scan and removals reported to `logged` (None: the context as it is)."""
    if logged is None:
        return ctx
    return dataclasses.replace(
        ctx,
        on_scan_progress=logged.reporter("scan", "windows"),
        on_progress=logged.reporter("removals", "removals"),
    )
