"""Fixtures for the daemon tests: a sandbox deployment, a notification socket, the daemon process.

`deployment(policies)` is a sandbox subprocess, a policy folder and the RETENTION_* environment
pointing at them (`support.deploy`, as tests/pipeline's fixture).

`daemon(dep, schedule="@every 2s")` starts `python -m retention daemon` against the deployment's
sandbox with NOTIFY_SOCKET pointing at a datagram socket the test owns, metrics on a free
port, and a watchdog interval; its stdout (JSON lines) and stderr are collected as they come.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import REPO, Deployment, deploy

WAIT_SECONDS = 60.0


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Deployment]:
    """Factory: `deployment(policies_yaml, *sandbox_args)`."""

    def build(policies: str, *args: str) -> Deployment:
        server = sandbox("--seed", "7", "--days", "150", "--sessions-per-day", "6", *args)
        return deploy(server, tmp_path, policies, RETENTION_CONCURRENCY="200")

    return build


@dataclass
class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's, read as promptly as systemd does."""

    path: str
    sock: socket.socket
    messages: list[dict[str, str]] = field(default_factory=list)

    def read_until_closed(self) -> None:
        """Collect every datagram (run in a thread until the socket closes)."""
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.messages.append(fields)

    def wait_for(self, key: str, value: str = "1", timeout: float = WAIT_SECONDS) -> dict[str, str]:
        """The first message carrying KEY=value, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if message.get(key) == value:
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no {key}={value} notification; got {self.messages}")


@pytest.fixture
def notify_socket_path() -> Iterator[str]:
    """A path for a socket in a short directory (socket paths are limited to 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="rn-", dir="/tmp")
    yield os.path.join(folder, "notify")
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def notify_socket(notify_socket_path: str) -> Iterator[NotifySocket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_socket_path)
    sock.settimeout(0.2)
    listener = NotifySocket(notify_socket_path, sock)
    reader = threading.Thread(target=listener.read_until_closed, daemon=True)
    reader.start()
    yield listener
    sock.close()
    reader.join(timeout=5)


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
        return httpx.get(self.metrics_url + path, timeout=10)

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

    def output(self) -> str:
        return "\n".join([*self.stdout, "--- stderr ---", *self.stderr])


def _drain(stream: Any, into: list[str]) -> None:
    for line in stream:
        into.append(line.rstrip("\n"))


@pytest.fixture
def daemon(notify_socket: NotifySocket) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory: start the daemon for a deployment; every one started is killed at teardown."""
    started: list[DaemonProcess] = []

    def start(dep: Any, schedule: str = "@every 2s", **extra_env: str) -> DaemonProcess:
        env = {
            **dep.env,
            "RETENTION_DEFAULT_SCHEDULE": schedule,
            "RETENTION_METRICS_ADDRESS": "127.0.0.1:0",
            "NOTIFY_SOCKET": notify_socket.path,
            "WATCHDOG_USEC": "1000000",
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
        started.append(running)
        return running

    yield start
    for running in started:
        if running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait()
        for reader in running.readers:
            reader.join(timeout=10)
        for stream in (running.proc.stdout, running.proc.stderr):
            if stream is not None:
                stream.close()
