"""The shared limiter's pacing, on a virtual clock: even spacing, the server's window, no drift."""

from __future__ import annotations

import asyncio
import bisect
import heapq
import math
from collections.abc import Coroutine
from typing import Any

import pytest

from retention.goto.pacing import RateLimiter

pytestmark = pytest.mark.anyio


class Clock:
    """Virtual time: sleeping moves the clock, optionally oversleeping like a busy loop."""

    def __init__(self, oversleep: float = 0.0) -> None:
        self.now = 100.0
        self.oversleep = oversleep
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds + self.oversleep
        await asyncio.sleep(0)


async def send_times(limiter: RateLimiter, clock: Clock, callers: int, each: int) -> list[float]:
    sent: list[float] = []

    async def caller() -> None:
        for _ in range(each):
            await limiter.acquire()
            sent.append(clock())

    await asyncio.gather(*(caller() for _ in range(callers)))
    return sorted(sent)


def most_in_one_second(times: list[float]) -> int:
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


async def test_limiter_spaces_requests_instead_of_releasing_the_whole_second_at_once() -> None:
    clock = Clock()
    limiter = RateLimiter(50, clock=clock, sleep=clock.sleep)
    times = await send_times(limiter, clock, callers=100, each=3)
    same_instant = max(times.count(t) for t in set(times))
    assert same_instant <= 5, "at most a tenth of the second's budget leaves at once"
    assert most_in_one_second(times) <= 50


async def test_limiter_keeps_the_rate_when_every_sleep_wakes_late() -> None:
    clock = Clock(oversleep=0.004)
    limiter = RateLimiter(50, margin=0.02, clock=clock, sleep=clock.sleep)
    times = await send_times(limiter, clock, callers=60, each=10)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    # Late wake-ups are absorbed by the slot schedule instead of adding up (20 ms slots,
    # 4 ms late each: without that, 50/s would drop to about 42/s).
    assert achieved >= 0.95 * 50
    assert most_in_one_second(times) <= 50


@pytest.mark.parametrize("rate", [1, 3, 4, 7, 10, 15, 33, 50, 64, 200, 2.5])
async def test_limiter_never_exceeds_the_limit_in_any_second_and_reaches_it(rate: float) -> None:
    clock = Clock()
    limiter = RateLimiter(rate, margin=0.02, clock=clock, sleep=clock.sleep)
    times = await send_times(limiter, clock, callers=max(4, int(2 * rate)), each=5)
    assert most_in_one_second(times) <= math.ceil(rate)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert achieved >= 0.95 * rate


async def test_limiter_pauses_every_caller_for_a_retry_after_then_recovers_its_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    await send_times(limiter, clock, callers=5, each=2)
    limiter.slow_down(pause=7.0)
    paused_at = clock()
    times = await send_times(limiter, clock, callers=5, each=1)
    assert min(times) >= paused_at + 7.0, "nobody goes during the pause"
    assert limiter.current_rate == 5.0
    for _ in range(25):
        limiter.succeeded()
    assert limiter.current_rate == pytest.approx(10.0)


async def test_limiter_after_a_429_sends_at_the_lowered_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(20, clock=clock, sleep=clock.sleep)
    limiter.slow_down()
    times = await send_times(limiter, clock, callers=10, each=6)
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert 9.0 <= achieved <= 10.5


class SharedClock:
    """Virtual time with overlapping sleeps: each sleeper wakes at its own time, in order."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, id(wake), wake))
        await wake

    async def run(self, *jobs: Coroutine[Any, Any, None]) -> None:
        tasks = [asyncio.ensure_future(job) for job in jobs]
        while not all(task.done() for task in tasks):
            for _ in range(20):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                when, _, wake = heapq.heappop(self._sleepers)
                self.now = max(self.now, when)
                wake.set_result(None)
        for task in tasks:
            task.result()


async def test_an_urgent_turn_goes_ahead_of_the_queue_within_the_limit() -> None:
    clock = SharedClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    urgent_at: list[float] = []

    async def queued() -> None:
        for _ in range(4):
            await limiter.acquire()
            sent.append(clock())

    async def urgent() -> None:
        await clock.sleep(0.5)
        await limiter.acquire(urgent=True)
        urgent_at.append(clock())
        sent.append(clock())

    await clock.run(*(queued() for _ in range(10)), urgent())
    assert urgent_at[0] <= 100.5 + 0.1 + 1e-9, "it waited for one turn, not behind the queue"
    assert most_in_one_second(sorted(sent)) <= 10


async def test_a_request_that_left_late_is_counted_from_when_it_left() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)
    departures = [await limiter.acquire() for _ in range(10)]
    late = departures.pop(0)
    limiter.left_at(late, late + 0.3)  # its connection took 300 ms to open
    departures.append(late + 0.3)
    departures += [await limiter.acquire() for _ in range(20)]
    assert most_in_one_second(sorted(departures)) <= 10
