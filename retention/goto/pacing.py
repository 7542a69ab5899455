"""Pacing of calls to the API: the shared rate limiter, and tenacity's wait and stop for retries.

The limiter is written here because aiolimiter and pyrate-limiter lack what the API needs: both
let a full bucket go at once after an idle spell (a server counting "N in any second" sees
more than N), neither takes an injected clock (so no test on virtual time), slows down on a
429 or pauses every caller for a Retry-After. It is a sliding-window log with spacing: a
request goes when the `count`-th previous one left at least `count / rate + margin` seconds
ago (the server's window, with a margin for jitter on the way), and no sooner than one
interval after the previous one, with one interval (at least 10 ms) of slack so that a late
wake-up is caught up rather than lost. A token refresh takes the next turn ahead of the queue:
the queued calls may be waiting for its token. A request that leaves late (a new connection
is opened first) is counted from when it left. On a 429 the rate halves (down to a tenth) and
every caller waits out the pause; each success wins back a fiftieth of the configured rate.

Retries: on 429, 5xx, timeouts and dropped connections, tenacity waits the server's Retry-After
(seconds or an HTTP date, capped) or a jittered exponential backoff, and stops at the attempt
limit, before an attempt would start after the call's deadline, or once a stop is asked for.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

Sleep = Callable[[float], Awaitable[None]]

_SLOWDOWN_FACTOR = 0.5
_FLOOR_FRACTION = 0.1
_RECOVERY_STEPS = 50
# The spacing's slack: one interval, and at high rates a few, as late wake-ups take this long.
_MIN_SLACK = 0.01
# A wait shorter than this is rounding error: the turn has come.
_NOW = 1e-6


class RateLimiter:
    """At most ceil(`rate`) requests in any second, `rate` on average, shared by all callers."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0 < rate < math.inf:
            raise ValueError("rate must be positive and finite")
        self.rate = rate
        self.current_rate = rate
        self.margin = margin
        # A server refusing the request that would make more than `rate` in a second lets
        # ceil(rate) through: the same count here.
        self._sent: deque[float] = deque(maxlen=math.ceil(rate))
        self._next_slot = -math.inf
        self._paused_until = -math.inf
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, current_rate={self.current_rate:.2f})"

    async def acquire(self, *, urgent: bool = False) -> float:
        """Wait for this caller's turn (first come, first served), count it as sent, return it.

        An `urgent` caller (a token refresh, which every queued call may be waiting for)
        takes the next free turn ahead of the queue instead of waiting behind it.
        """
        if urgent:
            now = self._clock()
            at = now + max(0.0, self._wait(now))
            self._record(at)
            if at - now > _NOW:
                await self._sleep(at - now)
            return at
        async with self._lock:
            while (wait := self._wait(self._clock())) > _NOW:
                await self._sleep(wait)
            at = self._clock()
            self._record(at)
            return at

    def left_at(self, turn: float, departure: float) -> None:
        """The request given the turn at `turn` left only at `departure` (a new connection
        took that long): count it from then, as the server will."""
        if departure - turn <= self.margin / 2 or turn not in self._sent:
            return
        entries = list(self._sent)
        entries.remove(turn)
        self._sent = deque(sorted([*entries, departure]), self._sent.maxlen)

    def _record(self, at: float) -> None:
        self._sent.append(at)
        self._next_slot = max(self._next_slot, at) + 1 / self.current_rate

    def _wait(self, now: float) -> float:
        interval = 1 / self.current_rate
        slack = max(interval, _MIN_SLACK)
        waits = [self._paused_until - now, self._next_slot - slack - now]
        if len(self._sent) == self._sent.maxlen:
            waits.append(self._sent[0] + len(self._sent) * interval + self.margin - now)
        return max(waits)

    def slow_down(self, pause: float | None = None) -> None:
        """A 429 came back: lower the rate, and pause everyone for `pause` seconds if given."""
        self.current_rate = max(self.rate * _FLOOR_FRACTION, self.current_rate * _SLOWDOWN_FACTOR)
        if pause is not None and pause > 0:
            self._paused_until = max(self._paused_until, self._clock() + pause)

    def succeeded(self) -> None:
        """A request went through: win back part of the configured rate."""
        if self.current_rate < self.rate:
            self.current_rate = min(self.rate, self.current_rate + self.rate / _RECOVERY_STEPS)


class Retryable(Exception):
    """An attempt failed in a way another may not (429, 5xx, timeout); never leaves goto/."""

    def __init__(
        self, status: int | None, body: str, kind: str, retry_after: float | None = None
    ) -> None:
        super().__init__(kind)
        self.status = status
        self.body = body
        self.kind = kind
        self.retry_after = retry_after


class StopRequested(Exception):
    """The stop event was set while waiting; the caller turns it into a named `Stopped`."""


def interruptible(sleep: Sleep, stop: asyncio.Event | None) -> Sleep:
    """`sleep` that ends early, raising StopRequested, once `stop` is set."""
    if stop is None:
        return sleep

    async def pause(seconds: float) -> None:
        if stop.is_set():
            raise StopRequested
        sleeper = asyncio.ensure_future(sleep(seconds))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait((sleeper, stopper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        if stop.is_set():
            raise StopRequested

    return pause


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class RetryWait:
    """Tenacity's wait: the server's Retry-After (capped) when given, else jittered backoff."""

    def __init__(self, initial: float, maximum: float, retry_after_cap: float) -> None:
        self._backoff = wait_random_exponential(multiplier=initial, max=maximum, min=initial / 4)
        self._cap = retry_after_cap

    def __call__(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, Retryable) and failure.retry_after is not None:
            return min(failure.retry_after, self._cap)
        return float(self._backoff(state))


def retrying(
    *,
    attempts: int,
    deadline: float,
    clock: Callable[[], float],
    wait: RetryWait,
    sleep: Sleep,
    before_sleep: Callable[[RetryCallState], None] | None = None,
) -> AsyncRetrying:
    """Tenacity's retrier for one call: Retryable failures, until attempts or deadline run out."""
    started = clock()

    def stop(state: RetryCallState) -> bool:
        if state.attempt_number >= attempts:
            return True
        return clock() - started + (state.upcoming_sleep or 0.0) >= deadline

    return AsyncRetrying(
        retry=retry_if_exception_type(Retryable),
        stop=stop,
        wait=wait,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
