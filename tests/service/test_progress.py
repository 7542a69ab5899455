"""Progress off a terminal: a line at least every 30 s of work, on an injected clock."""

from __future__ import annotations

import io
from typing import Any

from structlog.testing import capture_logs

from retention.service.progress import INTERVAL_SECONDS, ProgressLog, beat, progress_logged


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(captured: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in captured if line["event"] == "progress"]


def test_a_line_comes_once_30_s_have_passed_with_done_total_rate_and_eta() -> None:
    clock = Clock()
    progress = ProgressLog(clock=clock)
    report = progress.reporter("scan", "windows")
    with capture_logs() as captured:
        report(0, 2000)
        clock.now += 10
        report(100, 2000)
        clock.now += 19.9
        report(290, 2000)
        assert lines(captured) == []
        clock.now += 0.1
        report(300, 2000)
    [line] = lines(captured)
    assert line == {
        "event": "progress",
        "log_level": "info",
        "task": "scan",
        "done": 300,
        "total": 2000,
        "unit": "windows",
        "rate_per_s": 10.0,
        "eta_s": 170,
        "elapsed_s": 30,
    }


def test_lines_keep_coming_while_the_work_reports_nothing() -> None:
    """One slow call: the heartbeat's ticks write the line at each interval all the same."""
    clock = Clock()
    progress = ProgressLog(clock=clock)
    with capture_logs() as captured:
        progress.update("verify", "rows", 4096, 1_000_000)
        for _ in range(3):
            clock.now += INTERVAL_SECONDS
            assert progress.tick()
            assert not progress.tick(), "not twice in one interval"
    found = lines(captured)
    assert [line["elapsed_s"] for line in found] == [30, 60, 90]
    assert {line["done"] for line in found} == {4096}


def test_an_unknown_total_has_no_eta_and_no_work_has_no_rate() -> None:
    clock = Clock()
    progress = ProgressLog(clock=clock)
    with capture_logs() as captured:
        progress.update("removals", "removals", 0)
        clock.now += 45
        progress.tick()
    [line] = lines(captured)
    assert (line["total"], line["rate_per_s"], line["eta_s"]) == (None, 0.0, None)


def test_a_new_task_starts_its_own_count_and_rate() -> None:
    clock = Clock()
    progress = ProgressLog(clock=clock)
    with capture_logs() as captured:
        progress.update("scan", "windows", 600, 600)
        clock.now += 20
        progress.update("removals", "removals", 0, 58)
        clock.now += 10
        progress.update("removals", "removals", 20, 58)
    [line] = lines(captured)
    assert (line["task"], line["done"], line["total"], line["elapsed_s"]) == (
        "removals",
        20,
        58,
        10,
    )
    assert (line["rate_per_s"], line["eta_s"]) == (2.0, 19)


def test_nothing_is_logged_before_any_work_began() -> None:
    clock = Clock()
    progress = ProgressLog(clock=clock)
    clock.now += 3600
    with capture_logs() as captured:
        assert not progress.tick()
    assert lines(captured) == []


def test_before_any_work_the_heartbeat_still_waits_a_whole_interval_between_looks() -> None:
    clock = Clock()
    progress = ProgressLog(clock=clock)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.now += seconds
        return len(waits) > 3

    with capture_logs() as captured:
        beat(progress, wait)
    assert waits == [INTERVAL_SECONDS] * 4, "never a wait of 0: no busy loop"
    assert lines(captured) == []


def test_the_heartbeat_waits_until_each_line_is_due_then_stops() -> None:
    clock = Clock()
    progress = ProgressLog(clock=clock)
    progress.update("scan", "windows", 1, 10)
    waits: list[float] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        clock.now += seconds
        return len(waits) > 3  # stopped at the fourth wait

    with capture_logs() as captured:
        beat(progress, wait)
    assert waits == [INTERVAL_SECONDS] * 4
    assert len(lines(captured)) == 3


def test_on_a_terminal_there_are_no_lines_but_a_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    with progress_logged(Terminal()) as logged:
        assert logged is None
    with progress_logged(io.StringIO()) as logged:
        assert isinstance(logged, ProgressLog)
