"""Counts of what the client sent and got back, per endpoint and status, for reports and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class RequestStats:
    """Running counts; `endpoint` is the path template, e.g. `/organizers/{organizerKey}`."""

    calls: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    token_retries: int = 0
    responses: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    transport_errors: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)

    def record_response(self, method: str, endpoint: str, status: int) -> None:
        """One HTTP answer arrived."""
        self.requests += 1
        self.responses[(method, endpoint, status)] += 1
        if status == 429:
            self.rate_limited += 1

    def record_transport_error(self, method: str, endpoint: str, kind: str) -> None:
        """One request got no answer (timeout, dropped connection)."""
        self.requests += 1
        self.transport_errors[(method, endpoint, kind)] += 1

    def snapshot(self) -> RequestStats:
        """A copy that later requests do not change."""
        return RequestStats(
            self.calls,
            self.requests,
            self.retries,
            self.rate_limited,
            self.token_retries,
            Counter(self.responses),
            Counter(self.transport_errors),
            Counter(self.retried),
        )

    def since(self, earlier: RequestStats) -> RequestStats:
        """What happened after `earlier` was taken."""
        return RequestStats(
            self.calls - earlier.calls,
            self.requests - earlier.requests,
            self.retries - earlier.retries,
            self.rate_limited - earlier.rate_limited,
            self.token_retries - earlier.token_retries,
            self.responses - earlier.responses,
            self.transport_errors - earlier.transport_errors,
            self.retried - earlier.retried,
        )

    def by_endpoint(self) -> dict[str, int]:
        """Requests per endpoint template, answered or not."""
        totals: Counter[str] = Counter()
        for (_method, endpoint, _status), count in self.responses.items():
            totals[endpoint] += count
        for (_method, endpoint, _kind), count in self.transport_errors.items():
            totals[endpoint] += count
        return dict(totals)


class ClockSkew:
    """The latest difference between the host clock and a server's `Date` header, in seconds."""

    def __init__(self) -> None:
        self.seconds: float | None = None
        self.server_time: datetime | None = None

    def observe(self, server_time: datetime | None, host_time: datetime) -> None:
        """Note one answer's `Date` (None when it had none): host clock minus server clock."""
        if server_time is not None:
            self.server_time = server_time
            self.seconds = (host_time - server_time).total_seconds()
