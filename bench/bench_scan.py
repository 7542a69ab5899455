"""Scan benchmark: API calls and wall time of full scans (with and without the group prefilter)
and of a next-day incremental scan, against `retention sandbox --latency-ms 300 --rate-limit 10`.

The account size comes from the environment (defaults: the issue's 2,000 organizers in 60 groups
over 2 years): BENCH_SCAN_ORGANIZERS, BENCH_SCAN_GROUPS, BENCH_SCAN_DAYS,
BENCH_SCAN_SESSIONS_PER_DAY, BENCH_SCAN_RATE, BENCH_SCAN_LATENCY_MS. At 10 requests per second
a full scan of the default account takes hours; set a smaller size for a quick figure.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from bench.common import start_sandbox
from retention.engine.scan import ScanReport, scan
from retention.engine.state import open_state_db
from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.tokenstore import TokenStore
from retention.settings import Settings

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SETTLE = timedelta(hours=Settings.model_fields["settle_hours"].default)
WINDOW_DAYS = 30
GROUP_LIMIT = 50


def _env(name: str, default: float) -> float:
    return float(os.environ.get(f"BENCH_SCAN_{name}", default))


def account_file(folder: Path, organizers: int, groups: int, days: int, per_day: int) -> Path:
    """The generated account, with every group at most 50 organizers as the issue's shape has.

    The generator puts 51 organizers in the first group to exercise the fallback; one of them
    moves to the smallest other group so that the group prefilter applies everywhere.
    """
    path = folder / "account.json"
    command = [
        sys.executable, "-m", "retention", "sandbox", "generate", "--out", str(path),
        "--organizers", str(organizers), "--groups", str(groups), "--days", str(days),
        "--sessions-per-day", str(per_day), "--now", NOW.isoformat(),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    data = json.loads(path.read_text())
    sizes = Counter(o["groupKey"] for o in data["organizers"])
    for group, size in list(sizes.items()):
        if size > GROUP_LIMIT:
            movers = [o for o in data["organizers"] if o["groupKey"] == group][GROUP_LIMIT:]
            for organizer in movers:
                target = min(sizes, key=lambda key: sizes[key])
                organizer["groupKey"] = target
                sizes[group] -= 1
                sizes[target] += 1
    path.write_text(json.dumps(data))
    return path


async def one_scan(base: str, state: Path, rate: float, *, now: datetime, start: datetime,
                   full: bool, prefilter: bool) -> tuple[ScanReport, float]:  # fmt: skip
    auth = TokenManager(
        base + "/oauth/token",
        "sandbox-client",
        SecretStr("sandbox-secret"),
        TokenStore(state.parent / "token.json"),
        SecretStr("sandbox-refresh"),
    )
    db = open_state_db(state / "state.db")
    began = time.monotonic()
    async with GoToClient(base + "/G2M/rest", auth, rate) as client:
        report = await scan(
            client, db, now=now, window_days=WINDOW_DAYS, start=start, settle=SETTLE,
            full=full, concurrency=16, prefilter=prefilter,
        )  # fmt: skip
    return report, time.monotonic() - began


def describe(name: str, report: ScanReport, wall: float, rate: float) -> None:
    calls = report.requests.requests
    bound = calls / rate
    print(
        f"{name}: {calls} requests ({report.requests.calls} calls, {report.requests.retries} "
        f"retries, {report.requests.rate_limited} 429s), wall {wall:.1f} s, calls/rate "
        f"{bound:.1f} s, ratio {wall / bound if bound else 0:.3f}, complete={report.complete}",
        flush=True,
    )


def main() -> None:
    organizers = int(_env("ORGANIZERS", 2000))
    groups = int(_env("GROUPS", 60))
    days = int(_env("DAYS", 730))
    per_day = int(_env("SESSIONS_PER_DAY", 600))
    rate = _env("RATE", 10)
    latency = _env("LATENCY_MS", 300)
    print(f"account: {organizers} organizers, {groups} groups, {days} days, {per_day}/day; "
          f"rate {rate}/s, latency {latency} ms")  # fmt: skip
    start = NOW - timedelta(days=days + 1)
    yesterday = NOW - timedelta(days=1)
    with tempfile.TemporaryDirectory() as folder:
        account = account_file(Path(folder), organizers, groups, days, per_day)
        proc, base = start_sandbox(
            "--data", str(account), "--rate-limit", str(rate), "--latency-ms", str(latency)
        )
        try:
            for prefilter in (False, True):
                state = Path(folder) / f"full-{prefilter}"
                report, wall = asyncio.run(one_scan(base, state, rate, now=yesterday, start=start,
                                                    full=True, prefilter=prefilter))  # fmt: skip
                describe(f"full scan, prefilter={'on' if prefilter else 'off'}", report, wall, rate)
            report, wall = asyncio.run(one_scan(base, state, rate, now=NOW, start=start,
                                                full=False, prefilter=True))  # fmt: skip
            describe("next-day incremental scan", report, wall, rate)
            _per_met(state, yesterday, report, groups)
        finally:
            proc.terminate()
            proc.wait()


def _per_met(state: Path, yesterday: datetime, report: ScanReport, groups: int) -> None:
    db = open_state_db(state / "state.db")
    met_day, met_read = (
        db.execute(
            "SELECT COUNT(DISTINCT organizer_key) FROM sessions WHERE start_time >= ?",
            [since.isoformat(timespec="seconds")],
        ).fetchone()[0]
        for since in (yesterday, yesterday - SETTLE)
    )
    organizer_calls = report.requests.by_endpoint().get(
        "/organizers/{organizerKey}/historicalMeetings", 0
    )
    group_calls = report.requests.by_endpoint().get("/groups/{groupKey}/historicalMeetings", 0)
    print(
        f"  organizers that met that day: {met_day}; met in the day plus the {SETTLE} settle "
        f"margin: {met_read}; organizer calls {organizer_calls} "
        f"({organizer_calls / max(met_day, 1):.2f} per organizer that met that day), "
        f"group calls {group_calls} for {groups} groups",
        flush=True,
    )
