"""Sandbox figures: generate and load a 2,000-organizer / 500,000-session account, query latency."""

from __future__ import annotations

import asyncio
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from retention.sandbox import create_app, dump_account, generate_account, load_account

NOW = datetime(2026, 11, 23, tzinfo=UTC)
SHAPE = {"seed": 1, "organizers": 2000, "groups": 50, "days": 365, "sessions_per_day": 1400}
QUERIES = 300


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    return f"p50 {p50:.2f} ms  p95 {p95:.2f} ms  (n={len(ordered)})"


def _window(rng: random.Random, days: int) -> dict[str, str]:
    end = NOW.timestamp() - rng.randint(0, 300) * 86_400
    start = end - days * 86_400
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "startDate": time.strftime(fmt, time.gmtime(start)),
        "endDate": time.strftime(fmt, time.gmtime(end)),
    }


async def _latencies(
    client: httpx.AsyncClient, paths: list[tuple[str, dict[str, str]]]
) -> list[float]:
    samples = []
    for path, params in paths:
        began = time.perf_counter()
        response = await client.get(path, params=params)
        samples.append(time.perf_counter() - began)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return samples


async def _in_process(account: object) -> None:
    app = create_app(account)  # type: ignore[arg-type]
    token = app.state.tokens.issue_access_token()
    rng = random.Random(2)
    organizers = list(app.state.account.organizers)
    small_groups = [
        g for g in app.state.account.groups if len(app.state.account.group_members(g)) <= 50
    ]
    meetings = [m for m in app.state.account.meetings if m < 100_000_000 + 4000 * 7919]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://sandbox",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        cases = {
            "organizer history (30-day window)": [
                (
                    f"/G2M/rest/organizers/{rng.choice(organizers)}/historicalMeetings",
                    _window(rng, 30),
                )
                for _ in range(QUERIES)
            ],
            "group history (30-day window, ~40 organizers)": [
                (
                    f"/G2M/rest/groups/{rng.choice(small_groups)}/historicalMeetings",
                    _window(rng, 30),
                )
                for _ in range(QUERIES)
            ],
            "meeting-id history (recurring, 365 days)": [
                (f"/G2M/rest/meetings/{rng.choice(meetings)}/historicalMeetings", _window(rng, 365))
                for _ in range(QUERIES)
            ],
        }
        for name, paths in cases.items():
            print(f"in-process  {name}: {_percentiles(await _latencies(client, paths))}")


def _loopback(data: Path) -> None:
    began = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "retention", "sandbox", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        elapsed = time.perf_counter() - began
        print(f"loopback    server start with --data (load + bind): {elapsed:.1f} s")
        token = httpx.post(
            f"{base}/oauth/token",
            auth=("sandbox-client", "sandbox-secret"),
            data={"grant_type": "refresh_token", "refresh_token": "sandbox-refresh"},
        ).json()
        rng = random.Random(3)
        with httpx.Client(headers={"Authorization": f"Bearer {token['access_token']}"}) as client:
            samples = []
            for _ in range(100):
                params = _window(rng, 30)
                began = time.perf_counter()
                client.get(
                    f"{base}/G2M/rest/organizers/{1001 + rng.randrange(2000)}/historicalMeetings",
                    params=params,
                ).raise_for_status()
                samples.append(time.perf_counter() - began)
        print(f"loopback    organizer history (30-day window): {_percentiles(samples)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    began = time.perf_counter()
    account = generate_account(now=NOW, **SHAPE)
    print(
        f"generate    {len(account.organizers)} organizers, {len(account.sessions)} sessions: "
        f"{time.perf_counter() - began:.1f} s"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "account.json"
        began = time.perf_counter()
        dump_account(account, data)
        print(
            f"dump        {data.stat().st_size / 1e6:.0f} MB: {time.perf_counter() - began:.1f} s"
        )
        began = time.perf_counter()
        loaded = load_account(data)
        elapsed = time.perf_counter() - began
        print(f"load        {len(loaded.sessions)} sessions from JSON: {elapsed:.1f} s")
        del loaded
        asyncio.run(_in_process(account))
        _loopback(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS    {peak:.0f} MB (this process: generated + loaded copies)")


if __name__ == "__main__":
    main()
