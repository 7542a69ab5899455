"""Scan throughput under faults: API requests per second as a share of the rate limit.

The sandbox runs with `--fault-rate 0.05 --token-ttl 5 --latency-ms 50 --rate-limit 10`
(5% of API requests answered 500/502/503 or cut off, an access token every 5 s), and a full
scan of a BENCH_FAULTS_ORGANIZERS (60) organizer account over BENCH_FAULTS_DAYS (150) days is
timed in-process with the service's concurrency for that rate. The share is the API requests
the sandbox received (answered or not) over the wall time, divided by the limit: 1.0 means
the limit alone set the pace. BENCH_FAULTS_RATE, BENCH_FAULTS_LATENCY_MS,
BENCH_FAULTS_FAULT_RATE and BENCH_FAULTS_TOKEN_TTL change the conditions.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.common import start_sandbox
from retention.engine.scan import ScanReport, scan
from retention.engine.state import open_state_db
from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.tokenstore import TokenStore

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _env(name: str, default: float) -> float:
    return float(os.environ.get(f"BENCH_FAULTS_{name}", default))


async def timed_scan(base: str, folder: Path, rate: float, days: int) -> tuple[ScanReport, float]:
    """One full scan of the account: its report and wall time."""
    auth = TokenManager(
        base + "/oauth/token",
        "sandbox-client",
        SecretStr("sandbox-secret"),
        TokenStore(folder / "token.json"),
        SecretStr("sandbox-refresh"),
    )
    db = open_state_db(folder / "state.db")
    began = time.monotonic()
    async with GoToClient(base + "/G2M/rest", auth, rate) as client:
        report = await scan(
            client, db, now=NOW, window_days=30, start=NOW - timedelta(days=days + 1),
            settle=timedelta(hours=6), full=True,
            # The service's default for this rate (settings.py): twice the limit, at least 8.
            concurrency=min(256, max(8, math.ceil(2 * rate))),
        )  # fmt: skip
    return report, time.monotonic() - began


def main() -> None:
    organizers = int(_env("ORGANIZERS", 60))
    days = int(_env("DAYS", 150))
    rate = _env("RATE", 10)
    conditions = [
        "--fault-rate", str(_env("FAULT_RATE", 0.05)),
        "--token-ttl", str(int(_env("TOKEN_TTL", 5))),
        "--latency-ms", str(_env("LATENCY_MS", 50)),
        "--rate-limit", str(rate),
    ]  # fmt: skip
    account = [
        "--organizers", str(organizers), "--groups", "3", "--days", str(days),
        "--sessions-per-day", "20", "--now", NOW.isoformat(), "--seed", "5",
    ]  # fmt: skip
    print(f"sandbox {' '.join(conditions + account)}", flush=True)
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        proc, base = start_sandbox(*conditions, *account, cwd=folder)
        try:
            report, wall = asyncio.run(timed_scan(base, folder, rate, days))
            log = httpx.get(base + "/_sandbox/requests", timeout=30).json()
        finally:
            proc.terminate()
            proc.wait()
    api = [entry for entry in log if entry["path"].startswith("/G2M/rest")]
    tokens = len(log) - len(api)
    refused = sum(1 for entry in api if entry.get("status") == 429)
    share = len(api) / wall / rate
    print(
        f"scan under faults: {len(api)} API requests ({report.requests.retries} retries, "
        f"{refused} 429s) and {tokens} token requests in {wall:.1f} s: "
        f"{len(api) / wall:.2f} requests/s, {share:.2f} of the {rate:g}/s limit; "
        f"complete={report.complete}",
        flush=True,
    )


if __name__ == "__main__":
    main()
