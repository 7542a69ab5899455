"""Load benchmark: inventory, plan and apply against a large sandbox account, with peak RSS.

A sandbox generates an account of BENCH_LOAD_ORGANIZERS (5,000) organizers in
BENCH_LOAD_GROUPS (100) groups holding about BENCH_LOAD_SESSIONS (2,000,000) sessions over
BENCH_LOAD_DAYS (365) days. A delete_session policy is chosen so that the plan as of a fixed
time holds BENCH_LOAD_REMOVALS (50,000) removals: the oldest sessions. Then, each as a child
process with RETENTION_RATE_LIMIT=BENCH_LOAD_RATE (2,000): `retention inventory`,
`retention plan --as-of T --out PLAN`, `retention apply PLAN --yes`, `retention audit verify`.

The removals expected are computed here from the sandbox's own generator (the same arguments
give the same account), not by the service. Reported: wall time and peak RSS of each step
(measured in a small wrapper process, see MEASURE); the DELETEs the sandbox received against
the expected set (missing, unexpected, sent twice); the sessions left in the account. Exit code
1 when the result is not exact or a step failed. The last line is the figures as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench import common
from retention.sandbox import generate_account

SEED = 17
RSS_LIMIT_MB = 300


@dataclass(frozen=True)
class Size:
    """The account and plan sizes of one load run."""

    organizers: int
    groups: int
    sessions: int
    days: int
    removals: int
    rate: int

    @classmethod
    def from_env(cls) -> Size:
        def read(name: str, default: int) -> int:
            return int(os.environ.get(f"BENCH_LOAD_{name}", default))

        return cls(
            organizers=read("ORGANIZERS", 5_000),
            groups=read("GROUPS", 100),
            sessions=read("SESSIONS", 2_000_000),
            days=read("DAYS", 365),
            removals=read("REMOVALS", 50_000),
            rate=read("RATE", 2_000),
        )


@dataclass(frozen=True)
class Expected:
    """What the plan must hold (the policy's age in days, the as-of time, the removals), and
    how many finished sessions the account holds before."""

    after_days: int
    as_of: datetime
    removals: frozenset[tuple[int, int]]
    total: int


def expected_removals(size: Size, now: datetime) -> Expected:
    """Pick the policy age and as-of time that make the `removals` oldest sessions due."""
    account = generate_account(
        seed=SEED,
        organizers=size.organizers,
        groups=size.groups,
        days=size.days,
        sessions_per_day=size.sessions // size.days,
        now=now,
    )
    ended = sorted(
        (s.end, s.organizer_key, s.session_id)
        for s in account.sessions.values()
        if s.end is not None and s.start <= s.end <= int(now.timestamp())
    )
    cutoff = ended[min(size.removals, len(ended)) - 1][0]
    last_end = datetime.fromtimestamp(cutoff, UTC)
    after_days = (now - last_end) // timedelta(days=1)
    as_of = last_end + timedelta(days=after_days)
    due = frozenset((org, sid) for end, org, sid in ended if end <= cutoff)
    moment = int(now.timestamp())
    finished = sum(  # what the sandbox's state counts: sessions history serves at `now`
        1
        for s in account.sessions.values()
        if s.start <= moment and (s.end is None or s.end <= moment)
    )
    return Expected(after_days, as_of, due, finished)


class Sandbox:
    """A `retention sandbox` child generating the same account."""

    def __init__(self, size: Size, now: datetime, log: Path) -> None:
        account = [
            *("--seed", str(SEED), "--organizers", str(size.organizers)),
            *("--groups", str(size.groups), "--days", str(size.days)),
            *("--sessions-per-day", str(size.sessions // size.days)),
            *("--now", now.isoformat().replace("+00:00", "Z")),
        ]
        with log.open("w") as stderr:
            self.proc, self.base = common.start_sandbox(*account, stderr=stderr)
        assert self.proc.stdout is not None
        if not self.base.startswith("http"):
            raise SystemExit(f"sandbox did not start: {log.read_text()[-2000:]}")
        # Keep draining its stdout so that it never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def get(self, path: str) -> Any:
        response = httpx.get(self.base + path, timeout=600)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


# Runs the command and writes its peak RSS (KB) to argv[1]. A small process of its own, because
# a child's ru_maxrss counts the pages of the process it was forked from: forked straight from
# this benchmark, which holds the generated account, every step would seem to use as much.
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code)\n"
)


def run_step(name: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `retention ARGS` as a child; its exit code, wall time and peak RSS."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        rss_file, err_file = Path(folder) / "rss", Path(folder) / "stderr"
        with err_file.open("w") as err:
            code = subprocess.call(
                [
                    sys.executable,
                    "-c",
                    MEASURE,
                    str(rss_file),
                    sys.executable,
                    "-m",
                    "retention",
                    *args,
                ],
                env=env,
                cwd=common.REPO,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        peak_kb = int(rss_file.read_text() or 0) if rss_file.exists() else 0
        tail = err_file.read_text()[-1500:]
    figures = {
        "step": name,
        "exit": code,
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
    }
    print(json.dumps(figures), flush=True)
    if code != 0:
        print(tail, file=sys.stderr)
    return figures


def service_env(base: str, root: Path, size: Size, expected: Expected) -> dict[str, str]:
    policies = root / "policies"
    policies.mkdir()
    (policies / "load.yaml").write_text(
        "policies:\n  - name: sessions-load\n    description: The oldest sessions go.\n"
        f"    action: delete_session\n    after: {expected.after_days}d\n"
    )
    scan_start = expected.as_of - timedelta(days=size.days + expected.after_days + 2)
    return common.service_env(
        base,
        root,
        RETENTION_RATE_LIMIT=str(size.rate),
        RETENTION_CONCURRENCY="16",
        RETENTION_SCAN_WINDOW_DAYS="60",
        RETENTION_SCAN_START=scan_start.date().isoformat(),
        RETENTION_MAX_DELETIONS_PER_RUN=str(2 * size.removals + 100),
    )


def run_load(size: Size, root: Path) -> dict[str, Any]:
    """One load run in `root`; returns the figures (`exact` says whether it was exact)."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    started = time.perf_counter()
    expected = expected_removals(size, now)
    figures: dict[str, Any] = {
        "size": size.__dict__,
        "sessions": expected.total,
        "expected_removals": len(expected.removals),
        "expected_seconds": round(time.perf_counter() - started, 1),
    }
    sandbox = Sandbox(size, now, root / "sandbox.log")
    try:
        env = service_env(sandbox.base, root, size, expected)
        plan = str(root / "plan.json")
        as_of = expected.as_of.isoformat()
        steps = [
            run_step("inventory", ["inventory", "--format", "json"], env),
            run_step("plan", ["plan", "--as-of", as_of, "--out", plan, "--format", "json"], env),
            run_step("apply", ["apply", plan, "--yes"], env),
            run_step("verify", ["audit", "verify"], env),
        ]
        figures["steps"] = steps
        deletes = Counter(
            (int(parts[4]), int(parts[6]))
            for parts in (r["path"].split("/") for r in sandbox.get("/_sandbox/requests"))
            if len(parts) == 7 and parts[5] == "sessions"
        )
        left = set(sandbox.get("/_sandbox/state")["session_ids"])
    finally:
        sandbox.stop()
    sent = set(deletes)
    figures.update(
        deleted=len(sent),
        missing=len(expected.removals - sent),
        unexpected=len(sent - expected.removals),
        sent_twice=sum(1 for count in deletes.values() if count > 1),
        still_there=sum(1 for _, sid in expected.removals if sid in left),
        sessions_left=len(left),
    )
    figures["exact"] = (
        all(step["exit"] == 0 for step in steps)
        and sent == expected.removals
        and figures["sent_twice"] == 0
        and figures["still_there"] == 0
        and len(left) == expected.total - len(expected.removals)
    )
    figures["peak_rss_mb"] = max(step["peak_rss_mb"] for step in steps)
    figures["rss_under_limit"] = figures["peak_rss_mb"] < RSS_LIMIT_MB
    return figures


def main() -> None:
    size = Size.from_env()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as folder:
        figures = run_load(size, Path(folder))
    print(json.dumps(figures), flush=True)
    if not (figures["exact"] and figures["rss_under_limit"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
