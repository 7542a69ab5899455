"""Fixtures for the daemon tests: a sandbox deployment, a notification socket, the daemon process.

`deployment(policies)` is a sandbox subprocess, a policy folder and the RETENTION_* environment
pointing at them (`support.deploy`, as tests/pipeline's fixture).

`daemon(dep, schedule="@every 2s")` starts `python -m retention daemon` against the deployment's
sandbox with NOTIFY_SOCKET pointing at a datagram socket the test owns, metrics on a free
port, and a watchdog interval; its stdout (JSON lines) and stderr are collected as they come.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from daemons import WAIT_SECONDS, DaemonProcess, start_daemon
from support import Deployment, deploy


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


@pytest.fixture
def daemon(notify_socket: NotifySocket) -> Iterator[Callable[..., DaemonProcess]]:
    """Factory: start the daemon for a deployment; every one started is killed at teardown."""
    started: list[DaemonProcess] = []

    def start(dep: Any, schedule: str = "@every 2s", **extra_env: str) -> DaemonProcess:
        watched = {"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"}
        running = start_daemon(dep.env, schedule, **{**watched, **extra_env})
        started.append(running)
        return running

    yield start
    for running in started:
        running.reap()
