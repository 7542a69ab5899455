"""Pacing of calls to the API: the shared adaptive rate limiter, and the retry wait and stop.

The limiter, and why not a library: aiolimiter (leaky bucket) and pyrate-limiter both allow a
full bucket to be spent at once after an idle spell, which a server counting requests per
second sees as more than the limit; neither slows down on a 429 nor pauses every caller for a
Retry-After. So this is a sliding-window log: a request may go only when the `count`-th
previous one left at least `period` + `margin` seconds ago, which is the server's "no more
than N in any second" with a margin for the jitter between leaving here and arriving there;
and requests leave in small groups (up to 5, or a tenth of N when that is more, and a divisor
of N) spaced group/rate apart, so that the jitter stays small. A group, not one request at a
time: each wake-up of a sleeping process costs about 0.2 ms of CPU on a virtual machine, and
the requests of a group (and their answers, a latency later) share one.

On 429 the rate halves (down to a tenth of the configured one) and every caller waits out the
Retry-After; each success then wins back a fiftieth of the configured rate.

Retries: on 429, 5xx, timeouts and dropped connections, tenacity waits the server's Retry-After
(seconds or an HTTP date, capped) or a jittered exponential backoff, and stops at the attempt
limit or before an attempt would start after the call's overall deadline.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, wait_random_exponential

Sleep = Callable[[float], Awaitable[None]]

_SLOWDOWN_FACTOR = 0.5
_FLOOR_FRACTION = 0.1
_RECOVERY_STEPS = 50
# A wait shorter than this is rounding error in the slot arithmetic: the turn has come.
_NOW = 1e-6


class RateLimiter:
    """At most `rate` requests in any second (integer rates exactly), shared by all callers."""

    def __init__(
        self,
        rate: float,
        *,
        margin: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.margin = margin
        self.current_rate = rate
        self._count = max(1, math.floor(rate))
        # Groups of up to 5 (at most half the limit), or a tenth of the limit when that is more,
        # of a size that divides it: whole groups fill the server's second, and each group's
        # window is counted from one earlier group.
        most = max(1, self._count // 10, min(5, self._count // 2))
        self.group = max(d for d in range(1, most + 1) if self._count % d == 0)
        # How many may leave at once ahead of the schedule: one group, and at least 2 so that
        # late wake-ups are absorbed rather than added up when requests go one by one.
        self._burst = max(2, self.group)
        self._sent: deque[float] = deque(maxlen=self._count)
        self._paused_until = 0.0
        self._next_slot = 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, current_rate={self.current_rate:.2f})"

    @property
    def period(self) -> float:
        """Seconds that `count` consecutive requests must span at the current rate."""
        return self._count / self.current_rate + self.margin

    async def acquire(self) -> None:
        """Wait for this caller's turn (first come, first served), then record the send."""
        async with self._lock:
            while True:
                now = self._clock()
                if self._wait_needed(now, 0) <= _NOW:
                    self._record_send(now)
                    return
                # Sleep until a whole group may go: the callers queued behind this one then
                # find their turn already come, and leave in the same wake-up.
                await self._sleep(self._wait_needed(now, self.group - 1))

    def _wait_needed(self, now: float, ahead: int) -> float:
        """Seconds until the next send and the `ahead` after it may all go."""
        if self._paused_until > now:
            return self._paused_until - now
        # Spaced (a GCRA allowing a burst of one group), not a burst of `count`: a burst
        # leaves the process over tens of milliseconds of event-loop work, so its members
        # reach the server late by different amounts and the next burst lands inside the
        # server's second (measured: 13 429s in 400 DELETEs at 50/s before, none after).
        spacing = self._next_slot + ahead / self.current_rate - self._tolerance - now
        # The last of those sends is `count` after this earlier one, which must be `period` old.
        earlier = len(self._sent) + ahead - self._count
        if earlier < 0:
            return spacing
        return max(spacing, self._sent[earlier] + self.period - now)

    @property
    def _tolerance(self) -> float:
        return (self._burst - 1) / self.current_rate

    def _record_send(self, now: float) -> None:
        self._sent.append(now)
        # Scheduled from the previous slot, not from the moment a sleep ended, so late
        # wake-ups within the tolerance do not add up.
        self._next_slot = max(self._next_slot, now) + 1 / self.current_rate

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
    """An attempt failed in a way another may not (429, 5xx, timeout); never leaves the client."""

    def __init__(
        self, status: int | None, body: str, kind: str, retry_after: float | None = None
    ) -> None:
        super().__init__(kind)
        self.status = status
        self.body = body
        self.kind = kind
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
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


class DeadlineStop:
    """Tenacity's stop: no attempt would start after the call's overall deadline."""

    def __init__(
        self, deadline: float, max_attempts: int, started: float, clock: Callable[[], float]
    ) -> None:
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._clock = clock
        self._started = started

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self._max_attempts:
            return True
        upcoming = state.upcoming_sleep or 0.0
        return self._clock() - self._started + upcoming >= self._deadline
