"""What is worth retrying, and how long to wait: Retry-After (seconds or HTTP date) or backoff."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from tenacity import RetryCallState, wait_random_exponential


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

    def __init__(self, deadline: float, max_attempts: int, clock: Callable[[], float]) -> None:
        self._deadline = deadline
        self._max_attempts = max_attempts
        self._clock = clock
        self._started = clock()

    def __call__(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self._max_attempts:
            return True
        upcoming = state.upcoming_sleep or 0.0
        return self._clock() - self._started + upcoming >= self._deadline
