"""Apply benchmark: removals per second against the rate limit, a naive loop, CPU per removal.

For each rate (BENCH_APPLY_RATES, default "10,50") a sandbox serves a generated account whose
plan holds about BENCH_APPLY_ITEMS (3,000) session deletes. The plan is made at full speed;
then the sandbox gets `latency_ms` BENCH_APPLY_LATENCY_MS (300) and `rate_limit` R through its
control endpoint (the same as starting it with `--latency-ms 300 --rate-limit R`) and
`retention apply PLAN --yes` runs as a child process with RETENTION_RATE_LIMIT=R.

Reported per rate: removals per second over the DELETE span (first to last DELETE the sandbox
received) as a share of R, the 429s, the apply's wall time, the child's user+sys CPU (from
os.wait4, interpreter start-up included) per removal, and a naive loop (one DELETE after the
other, over the same endpoints, on a fresh copy of the account) over BENCH_APPLY_NAIVE_ITEMS
items (default: all of them) with its removals per second and the ratio between the two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import REPO, retention, service_env, start_sandbox

NOW = "2026-11-23T00:00:00Z"
PER_DAY = 40
POLICY = """
policies:
  - name: sessions-1d
    description: Every finished session goes after a day (benchmark only).
    action: delete_session
    after: 1d
"""


def _env(name: str, default: str) -> str:
    return os.environ.get(f"BENCH_APPLY_{name}", default)


@dataclass
class Sandbox:
    """A `retention sandbox` child serving a generated account."""

    proc: subprocess.Popen[str]
    base: str

    @classmethod
    def start(cls, days: int) -> Sandbox:
        account = [
            "--seed", "5", "--organizers", "40", "--groups", "2", "--days", str(days),
            "--sessions-per-day", str(PER_DAY), "--now", NOW,
        ]  # fmt: skip
        return cls(*start_sandbox(*account))

    def get(self, path: str) -> Any:
        return httpx.get(self.base + path, timeout=60).json()

    def control(self, **changes: Any) -> None:
        httpx.post(self.base + "/_sandbox/control", json=changes, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def environment(sandbox: Sandbox, root: Path, rate: float) -> dict[str, str]:
    return service_env(
        sandbox.base, root, RETENTION_RATE_LIMIT=str(rate), RETENTION_SCAN_START="2025-01-01"
    )


def make_plan(sandbox: Sandbox, root: Path) -> list[dict[str, Any]]:
    (root / "policies").mkdir(parents=True)
    (root / "policies" / "policies.yaml").write_text(POLICY)
    plan_file = root / "plan.json"
    subprocess.run(
        [sys.executable, "-m", "retention", "plan", "--out", str(plan_file), "--format", "json"],
        env=environment(sandbox, root, 1000),
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    items: list[dict[str, Any]] = json.loads(plan_file.read_text())["items"]
    return items


def run_apply(sandbox: Sandbox, root: Path, rate: float) -> tuple[float, float, int]:
    """Wall seconds, user+sys CPU seconds and exit status of `retention apply PLAN --yes`."""
    began = time.monotonic()
    with (root / "apply.log").open("w") as out:
        child = retention(
            "apply",
            str(root / "plan.json"),
            "--yes",
            env=environment(sandbox, root, rate),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - began, usage.ru_utime + usage.ru_stime, child.returncode


def naive_loop(sandbox: Sandbox, items: list[dict[str, Any]]) -> float:
    """Seconds a plain loop takes to DELETE `items` one after the other (token fetched first)."""
    with httpx.Client(timeout=60) as http:
        token = http.post(
            sandbox.base + "/oauth/token",
            auth=("sandbox-client", "sandbox-secret"),
            data={"grant_type": "refresh_token", "refresh_token": "sandbox-refresh"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        began = time.monotonic()
        for item in items:
            path = f"/G2M/rest/organizers/{item['organizerKey']}/sessions/{item['sessionId']}"
            response = http.delete(sandbox.base + path, headers=headers)
            if response.status_code == 429:  # the naive loop's only courtesy: wait and resend
                time.sleep(float(response.headers.get("Retry-After", "1")))
                response = http.delete(sandbox.base + path, headers=headers)
            response.raise_for_status()
        return time.monotonic() - began


def bench_rate(rate: float, items_wanted: int, latency: float, naive_items: int) -> None:
    days = items_wanted // PER_DAY + 2  # the last day is too young for the 1-day policy
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        sandbox = Sandbox.start(days)
        try:
            items = make_plan(sandbox, root)
            before = sandbox.get("/_sandbox/state")["sessions"]
            sandbox.control(latency_ms=latency, rate_limit=rate)
            mark = len(sandbox.get("/_sandbox/requests"))
            wall, cpu, code = run_apply(sandbox, root, rate)
            after = sandbox.get("/_sandbox/state")["sessions"]
            deleted, limited, span = delete_span_since(sandbox, mark)
        finally:
            sandbox.stop()
        achieved = (deleted - 1) / span if span else 0.0
        print(
            f"rate {rate:g}/s, latency {latency:g} ms: {len(items)} planned, exit {code}, "
            f"sessions {before} -> {after}; {deleted} DELETEs in {span:.1f} s = "
            f"{achieved:.2f}/s = {achieved / rate:.1%} of the limit; {limited} 429s; "
            f"apply wall {wall:.1f} s; CPU {cpu:.2f} s = {cpu / max(deleted, 1) * 1000:.2f} ms "
            f"per removal",
            flush=True,
        )
        sample = items[: naive_items or len(items)]
        sandbox = Sandbox.start(days)
        try:
            sandbox.control(latency_ms=latency, rate_limit=rate)
            seconds = naive_loop(sandbox, sample)
        finally:
            sandbox.stop()
        naive = len(sample) / seconds
        print(
            f"  naive sequential loop: {len(sample)} DELETEs in {seconds:.1f} s = {naive:.2f}/s; "
            f"the executor is {achieved / naive:.1f}x faster",
            flush=True,
        )


def delete_span_since(sandbox: Sandbox, mark: int) -> tuple[int, int, float]:
    """`delete_span` over the requests from index `mark` on (the apply's own)."""
    requests = sandbox.get(f"/_sandbox/requests?since={mark}")
    deletes = [r for r in requests if r["method"] == "DELETE" and r["status"] in (204, 404)]
    limited = sum(1 for r in requests if r["status"] == 429)
    span = deletes[-1]["t"] - deletes[0]["t"] if len(deletes) > 1 else 0.0
    return len(deletes), limited, span


def main() -> None:
    items = int(_env("ITEMS", "3000"))
    latency = float(_env("LATENCY_MS", "300"))
    naive_items = int(_env("NAIVE_ITEMS", "0"))
    for rate in (float(r) for r in _env("RATES", "10,50").split(",")):
        bench_rate(rate, items, latency, naive_items)
