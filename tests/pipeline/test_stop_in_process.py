"""The run's stop, in-process on the sandbox: a call waiting for its turn is never sent.

The stop is the context's (`RunContext.stop`, what SIGTERM and the run deadline set), handed
to the client by the context itself; nothing of the client or the executor is replaced.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from facts_support import settings_for

from retention.audit import verify_log
from retention.audit.store import connect_reader
from retention.sandbox import Account, SandboxOptions, create_app, generate_account
from retention.service import pipeline
from retention.service.context import RunContext
from retention.service.statedir import RunStopped

pytestmark = pytest.mark.anyio
ACCOUNT_NOW = datetime(2026, 11, 23, tzinfo=UTC)
POLICIES = """
policies:
  - name: recordings-7d
    description: Recordings go a week after the session ended.
    action: delete_recordings
    after: 7d
    match: {has_recording: true}
"""


class SlowDownAtTheFirstDelete(httpx.AsyncBaseTransport):
    """The sandbox, but the first DELETE is answered 429 with a long Retry-After (it is not
    carried out), and the run's stop is set while every other DELETE waits out that pause."""

    def __init__(self, app: httpx.AsyncBaseTransport, ctx_stop: asyncio.Event) -> None:
        self.app = app
        self.stop = ctx_stop
        self.deletes: list[tuple[str, bool]] = []  # path, and whether the stop was set then

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            self.deletes.append((request.url.path, self.stop.is_set()))
            if len(self.deletes) == 1:
                asyncio.get_running_loop().call_later(0.2, self.stop.set)
                return httpx.Response(429, headers={"Retry-After": "60"}, json={"msg": "slow"})
        return await self.app.handle_async_request(request)


def outcomes_by_intent(db: Path) -> tuple[list[int], Counter[int], list[str]]:
    conn = connect_reader(db)
    try:
        intents = [row[0] for row in conn.execute("SELECT seq FROM events WHERE event = 'intent'")]
        rows = conn.execute(
            "SELECT intent_seq, outcome, data FROM events WHERE event = 'outcome'"
        ).fetchall()
    finally:
        conn.close()
    return intents, Counter(row[0] for row in rows), [f"{row[1]} {row[2]}" for row in rows]


def sandbox() -> tuple[Account, httpx.AsyncBaseTransport]:
    account = generate_account(
        seed=3, organizers=4, groups=2, days=30, sessions_per_day=6, now=ACCOUNT_NOW
    )
    return account, httpx.ASGITransport(app=create_app(account, SandboxOptions()))


def recordings(account: Account) -> int:
    return sum(1 for s in account.iter_sessions() if s.recording is not None)


async def test_a_stop_while_deletes_wait_for_their_turn_sends_none_and_ends_every_intent(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, POLICIES, concurrency=4, call_deadline=300, config=None)
    account, app = sandbox()
    stop = asyncio.Event()
    transport = SlowDownAtTheFirstDelete(app, stop)
    ctx = RunContext(settings, transport=transport, stop=stop)
    before = recordings(account)

    started = time.monotonic()
    result = await pipeline.run(ctx, trigger="test", confirm=None, approved_by="test")

    assert time.monotonic() - started < 30, "the stop ended the 60 s pause"
    assert result.planned > settings.concurrency, "items were left for after the stop"
    assert len(transport.deletes) == 1, "no DELETE sent after the first (answered 429)"
    assert not [path for path, after_stop in transport.deletes if after_stop]
    assert recordings(account) == before

    intents, outcomes, described = outcomes_by_intent(settings.audit_db)
    assert len(intents) > 1, "DELETEs had intents recorded and waited for their turn"
    assert sorted(outcomes) == sorted(intents), "every intent has an outcome"
    assert set(outcomes.values()) == {1}, "exactly one each"
    assert all(text.startswith("failed ") for text in described), described
    assert all("the run is stopping" in text for text in described), described
    assert sum("not sent: the run is stopping" in text for text in described) == len(intents) - 1
    assert result.execution.halted == "stopped by signal before every item was executed"
    assert result.execution.not_started == result.planned - len(intents)

    report = verify_log(settings.audit_db)
    assert report.clean, report.findings
    assert report.pending_intents == []


class StopAtTheFirstHistoryRead(httpx.AsyncBaseTransport):
    """The sandbox; the run's stop is set while the scan's first history read is answered."""

    def __init__(self, app: httpx.AsyncBaseTransport, ctx_stop: asyncio.Event) -> None:
        self.app = app
        self.stop = ctx_stop
        self.after_stop: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.stop.is_set():
            self.after_stop.append(f"{request.method} {request.url.path}")
        elif request.url.path.endswith("/historicalMeetings"):
            self.stop.set()
        return await self.app.handle_async_request(request)


async def test_a_stop_during_a_manual_runs_scan_ends_it_before_any_removal(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, POLICIES, concurrency=4, call_deadline=300, config=None)
    account, app = sandbox()
    stop = asyncio.Event()
    transport = StopAtTheFirstHistoryRead(app, stop)
    ctx = RunContext(settings, transport=transport, stop=stop)  # stoppable_scan False
    before = recordings(account)

    with pytest.raises(RunStopped) as stopped:
        await pipeline.run(ctx, trigger="test", confirm=None, approved_by="test")

    assert "not sent: the run is stopping" in stopped.value.message
    assert transport.after_stop == [], "the reads in flight were answered, none started"
    assert recordings(account) == before
    intents, outcomes, _ = outcomes_by_intent(settings.audit_db)
    assert intents == []
    assert not outcomes
    report = verify_log(settings.audit_db)
    assert report.clean, report.findings
