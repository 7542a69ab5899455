"""One shared, adaptive client-side rate limiter for every call to the API.

Why not a library: aiolimiter (leaky bucket) and pyrate-limiter both allow a full bucket to be
spent at once after an idle spell, which a server counting requests per wall-clock second sees
as more than the limit; neither slows down on a 429 nor pauses every caller for a Retry-After.
So this is a sliding-window log: a request may go only when the `count`-th previous one left
at least `period` + `margin` seconds ago, which is exactly the server's "no more than N in any
second" measured with a margin for the jitter between leaving here and arriving there.

On 429 the rate halves (down to a tenth of the configured one) and every caller waits out the
Retry-After; each success then wins back a fiftieth of the configured rate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

Sleep = Callable[[float], Awaitable[None]]

_SLOWDOWN_FACTOR = 0.5
_FLOOR_FRACTION = 0.1
_RECOVERY_STEPS = 50


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
        self._sent: deque[float] = deque(maxlen=self._count)
        self._paused_until = 0.0
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
                wait = self._wait_needed(self._clock())
                if wait <= 0:
                    self._sent.append(self._clock())
                    return
                await self._sleep(wait)

    def _wait_needed(self, now: float) -> float:
        if self._paused_until > now:
            return self._paused_until - now
        if len(self._sent) < self._count:
            return 0.0
        return self._sent[0] + self.period - now

    def slow_down(self, pause: float | None = None) -> None:
        """A 429 came back: lower the rate, and pause everyone for `pause` seconds if given."""
        self.current_rate = max(self.rate * _FLOOR_FRACTION, self.current_rate * _SLOWDOWN_FACTOR)
        if pause is not None and pause > 0:
            self._paused_until = max(self._paused_until, self._clock() + pause)

    def succeeded(self) -> None:
        """A request went through: win back part of the configured rate."""
        if self.current_rate < self.rate:
            self.current_rate = min(self.rate, self.current_rate + self.rate / _RECOVERY_STEPS)
