"""`retention daemon` as a real subprocess for the tests: started, its output collected, reaped."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from support import REPO, TLS

WAIT_SECONDS = 60.0


@dataclass
class DaemonProcess:
    """A running `retention daemon` and what it wrote so far."""

    proc: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        """Every JSON log line so far."""
        return [json.loads(line) for line in list(self.stdout) if line.startswith("{")]

    def wait_for_event(
        self, predicate: Callable[[dict[str, Any]], bool], *, after: int = 0
    ) -> dict[str, Any]:
        """The first log event from index `after` on that satisfies `predicate`."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            for event in self.events()[after:]:
                if predicate(event):
                    return event
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no such event; output:\n{self.output()}")

    def wait_for_run(self, *, after: int = 0) -> dict[str, Any]:
        """The next "run finished" summary line."""
        return self.wait_for_event(lambda e: e["event"] == "run finished", after=after)

    @property
    def metrics_url(self) -> str:
        served = self.wait_for_event(lambda e: e["event"] == "metrics served")
        return f"http://{served['address']}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.metrics_url + path, timeout=10, verify=TLS)

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        """SIGTERM and wait (a safety net of a minute); the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        for reader in self.readers:
            reader.join(timeout=10)
        return code

    def reap(self) -> None:
        """Kill the daemon if it still runs, and close its pipes once they are read."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self.readers:
            reader.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def output(self) -> str:
        return "\n".join([*self.stdout, "--- stderr ---", *self.stderr])


def _drain(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


def start_daemon(base_env: Mapping[str, str], schedule: str, **extra_env: str) -> DaemonProcess:
    """`python -m retention daemon` with `base_env`, a schedule and metrics on a free port."""
    env = {
        **base_env,
        "RETENTION_DEFAULT_SCHEDULE": schedule,
        "RETENTION_METRICS_ADDRESS": "127.0.0.1:0",
        **extra_env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "retention", "daemon"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    running = DaemonProcess(proc)
    for stream, into in ((proc.stdout, running.stdout), (proc.stderr, running.stderr)):
        reader = threading.Thread(target=_drain, args=(stream, into), daemon=True)
        reader.start()
        running.readers.append(reader)
    return running
