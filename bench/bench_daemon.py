"""Daemon at rest: resident memory and CPU time between runs, sampled from /proc over 30 s.

Starts a sandbox and `retention daemon` against it (a run every minute), waits for READY
and the first run, then reads /proc/PID/status (VmRSS, VmHWM) and /proc/PID/stat
(utime + stime) at the start and the end of a 30 s idle window before the next run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from bench.common import retention, service_env, start_sandbox
from retention.sandbox.policies import RECORDINGS_30D

POLICY = RECORDINGS_30D
IDLE_SECONDS = 30.0
# The first run comes one interval after READY; the next one after the idle window.
INTERVAL_SECONDS = 60
TICKS = os.sysconf("SC_CLK_TCK")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _cpu_seconds(pid: int) -> float:
    # Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _wait_for(lines: list[str], event: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(json.loads(line).get("event") == event for line in list(lines)):
            return
        time.sleep(0.1)
    raise TimeoutError(event)


def main() -> None:
    """Print the daemon's idle RSS and CPU use."""
    sandbox, base = start_sandbox("--seed", "7", stderr=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="rb-", dir="/tmp") as folder:
        root = Path(folder)
        (root / "policies").mkdir()
        (root / "policies" / "p.yaml").write_text(POLICY)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(root / "notify"))
        env = service_env(
            base,
            root,
            RETENTION_RATE_LIMIT="100",
            RETENTION_SCAN_START="2026-06-01",
            RETENTION_DEFAULT_SCHEDULE=f"@every {INTERVAL_SECONDS}s",
            RETENTION_METRICS_ADDRESS="127.0.0.1:0",
            NOTIFY_SOCKET=str(root / "notify"),
            WATCHDOG_USEC="60000000",
            PYTHONUNBUFFERED="1",
        )
        daemon = retention("daemon", env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        lines: list[str] = []
        assert daemon.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(daemon.stdout), daemon=True)
        reader.start()
        try:
            _wait_for(lines, "daemon ready")
            _wait_for(lines, "run finished")
            rss0, cpu0 = _status_kib(daemon.pid, "VmRSS"), _cpu_seconds(daemon.pid)
            time.sleep(IDLE_SECONDS)
            rss1, cpu1 = _status_kib(daemon.pid, "VmRSS"), _cpu_seconds(daemon.pid)
            hwm = _status_kib(daemon.pid, "VmHWM")
            runs = sum(json.loads(line).get("event") == "run finished" for line in list(lines))
            assert runs == 1, "a second run fell inside the idle window"
        finally:
            daemon.terminate()
            daemon.wait(timeout=60)
            sandbox.terminate()
            sandbox.wait(timeout=30)
            notify.close()
    cpu = cpu1 - cpu0
    print(
        f"idle RSS: {rss0 / 1024:.1f} MiB at start, {rss1 / 1024:.1f} MiB after {IDLE_SECONDS:g} s"
    )
    print(f"peak RSS (VmHWM): {hwm / 1024:.1f} MiB")
    print(f"idle CPU: {cpu:.3f} s over {IDLE_SECONDS:g} s ({cpu / IDLE_SECONDS:.3%} of one core)")
