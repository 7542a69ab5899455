"""`retention daemon` in this process, on a clock the test moves, against a `routes.World`.

`started(made)` does what `Daemon.serve` does between its signal handlers and its sockets: the
last run remembered from the record, the start-up (the record checked, intents reconciled), the
scheduler started and READY sent; at the end of the block, the stop SIGTERM makes. The
scheduler's jobs are installed (READY and `/healthz` report them) but held: scheduled runs are
the test's to fire, `await made.run_due(spec)`, at the moments `fires` walks on its clock.
`scrape` reads `/metrics` and `/healthz` from the daemon's own app over ASGI; `Notifications`
is a datagram socket standing in for systemd's, read in the test's thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from routes import ACCOUNT_NOW, World
from support import invoke_retention

from retention.audit.export import Filters, iter_export
from retention.audit.store import connect_reader
from retention.service.daemon import Daemon
from retention.service.metrics import metrics_app
from retention.service.notify import Notifier
from retention.service.schedule import Schedule

# Three hours after the account's last session: every clock starts here unless told otherwise.
START = ACCOUNT_NOW + timedelta(hours=3)


@dataclass
class Clock:
    """The daemon's clock, moved by the test (the API keeps real time: its `Date` is checked
    against the host's real clock, not the run's)."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now


def daemon(world: World, clock: Clock, notifier: Notifier | None = None, **settings: Any) -> Daemon:
    """A daemon on the world's account, its policy folder loaded."""
    made = Daemon(
        world.settings(**settings),
        notifier or Notifier(None),
        clock=clock,
        transport=world.spy,
    )
    made.load()
    return made


@asynccontextmanager
async def started(made: Daemon) -> AsyncIterator[bool]:
    """The daemon started as `serve` starts it, then stopped as SIGTERM stops it; yields
    whether the start-up let the scheduler start (a refusal does, a stop does not)."""
    made._remember()
    up = await made._start_up()
    if up:
        made._start_scheduler(asyncio.get_running_loop())
        assert made.scheduler is not None
        made.scheduler.pause()  # before the loop turns: no job fires on the wall clock
    try:
        yield up
    finally:
        made.terminate(signal.SIGTERM)
        try:
            await made._stop()
        finally:
            made.notifier.close()


def fires(
    schedules: Sequence[Schedule], start: datetime, until: datetime
) -> list[tuple[datetime, Schedule]]:
    """Each schedule's fire times from `start` to `until` (included), by its own trigger, in
    time order (a tie in the order of `schedules`)."""
    found: list[tuple[datetime, int, Schedule]] = []
    for index, schedule in enumerate(schedules):
        trigger = schedule.trigger(start=start)
        previous: datetime | None = None
        moment = start
        while True:
            fire = trigger.get_next_fire_time(previous, moment)
            if fire is None or fire > until:
                break
            found.append((fire, index, schedule))
            previous, moment = fire, fire + timedelta(microseconds=1)
    return [(fire, schedule) for fire, _index, schedule in sorted(found, key=lambda f: f[:2])]


@dataclass
class Scraped:
    """What `/metrics` and `/healthz` answered."""

    metrics_status: int
    exposition: str
    health_status: int
    health: dict[str, Any]

    def samples(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        """Every sample of the exposition, by sample name."""
        found: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(self.exposition):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return found

    def gauge(self, name: str) -> float:
        """The value of one unlabelled sample."""
        for labels, value in self.samples().get(name, []):
            if not labels:
                return value
        raise AssertionError(f"no sample {name}")

    def last_run(self) -> tuple[dict[str, float], float]:
        """The last-run states and the one last-run timestamp."""
        found = self.samples()
        states = {
            labels["retention_last_run_result"]: value
            for labels, value in found["retention_last_run_result"]
        }
        ((_labels, timestamp),) = found["retention_last_run_timestamp_seconds"]
        return states, timestamp


async def scrape(made: Daemon) -> Scraped:
    """`/metrics` and `/healthz` as the daemon serves them, over ASGI."""
    transport = httpx.ASGITransport(app=metrics_app(made.metrics, made.health))
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        metrics = await client.get("/metrics")
        health = await client.get("/healthz")
    return Scraped(metrics.status_code, metrics.text, health.status_code, health.json())


class Notifications:
    """An AF_UNIX datagram socket standing in for systemd's: `read()` takes what was sent."""

    def __init__(self) -> None:
        # A short directory: socket paths are limited to 108 bytes.
        self.folder = tempfile.mkdtemp(prefix="rn-", dir="/tmp")
        self.address = os.path.join(self.folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.address)
        self.sock.setblocking(False)
        self.messages: list[dict[str, str]] = []

    def read(self) -> list[dict[str, str]]:
        """Every message so far (a datagram is queued when sent: nothing to wait for)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def cli(world: World, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`retention ARGS` in this process with the world's settings; unlike `routes.invoke`, the
    logging the command configures is put back after it (a `capture_logs` around it holds)."""
    return invoke_retention(
        *args,
        env={
            "PATH": os.environ["PATH"],
            "RETENTION_CLIENT_ID": "sandbox-client",
            "RETENTION_CLIENT_SECRET": "sandbox-secret",
            "RETENTION_REFRESH_TOKEN": "sandbox-refresh",
            **world.env(**env),
        },
    )


def events(world: World, kind: str | None = None) -> list[dict[str, Any]]:
    """The audit record's events (of one kind), as `retention audit export` gives them."""
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        found = list(iter_export(conn, Filters()))
    finally:
        conn.close()
    return [event for event in found if kind is None or event["event"] == kind]


def data(world: World, kind: str) -> list[dict[str, Any]]:
    """The `data` of every audit event of this kind, read from the record itself."""
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        rows = conn.execute("SELECT data FROM events WHERE event = ? ORDER BY seq", [kind])
        return [json.loads(row[0]) for row in rows]
    finally:
        conn.close()
