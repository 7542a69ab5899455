"""Shared fixtures: a real sandbox subprocess on loopback, and an in-process sandbox over ASGI.

`sandbox(*args)` starts `python -m retention sandbox --port 0 *args`, waits for the base URL
on its first line and returns a `SandboxServer`; every server started is stopped at teardown.
`sandbox_asgi(**kwargs)` builds the same application in-process (`SandboxASGI`): faster, with
an injectable clock, and its live account at `.account`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from retention.sandbox import Account, SandboxOptions, create_app, generate_account

REPO = Path(__file__).resolve().parents[1]
SANDBOX_NOW = datetime(2026, 11, 23, tzinfo=UTC)
STARTUP_TIMEOUT = 30.0


@dataclass
class SandboxServer:
    """A running `retention sandbox` subprocess and helpers to inspect and steer it."""

    proc: subprocess.Popen[str]
    base_url: str
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    refresh_token: str = "sandbox-refresh"

    @property
    def api_url(self) -> str:
        return self.base_url + "/G2M/rest"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.base_url + path, timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def state(self) -> dict[str, Any]:
        """GET /_sandbox/state: counts and id lists of what the account holds."""
        return self._call("GET", "/_sandbox/state")  # type: ignore[no-any-return]

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """GET /_sandbox/requests: every request received from index `since` on."""
        return self._call("GET", f"/_sandbox/requests?since={since}")  # type: ignore[no-any-return]

    def control(self, **changes: Any) -> dict[str, Any]:
        """POST /_sandbox/control: change faults, limits, tokens at run time."""
        return self._call("POST", "/_sandbox/control", json=changes)  # type: ignore[no-any-return]

    def service_env(self, state_dir: Path, policy_dir: Path, **settings: str) -> dict[str, str]:
        """The environment of a `retention` subprocess pointed at this sandbox.

        The caller's RETENTION_*, credential and systemd variables are dropped; `settings`
        (e.g. `RETENTION_RATE_LIMIT="50"`) override the defaults.
        """
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(
                ("RETENTION_", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_")
            )
        }
        env.update(
            {
                "RETENTION_API_BASE_URL": self.api_url,
                "RETENTION_TOKEN_URL": self.token_url,
                "RETENTION_CLIENT_ID": self.client_id,
                "RETENTION_CLIENT_SECRET": self.client_secret,
                "RETENTION_REFRESH_TOKEN": self.refresh_token,
                "RETENTION_STATE_DIR": str(state_dir),
                "RETENTION_POLICY_DIR": str(policy_dir),
                "RETENTION_RATE_LIMIT": "100",
                "RETENTION_CONCURRENCY": "8",
                "RETENTION_SCAN_START": "2026-06-01",
                "PYTHONUNBUFFERED": "1",
                **settings,
            }
        )
        return env

    def access_token(self) -> str:
        """A fresh access token (refreshing with, and rotating, the current refresh token)."""
        response = httpx.post(
            self.token_url,
            auth=(self.client_id, self.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
            timeout=10,
        )
        response.raise_for_status()
        body = response.json()
        self.refresh_token = body["refresh_token"]
        return str(body["access_token"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_sandbox(args: tuple[str, ...], stderr_path: Path) -> SandboxServer:
    """Start a sandbox subprocess and wait for its base URL; fails the test if it does not come."""
    command = [sys.executable, "-m", "retention", "sandbox", "--port", "0", *args]
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    lines: list[str] = []
    first_line = threading.Event()

    def drain() -> None:  # keeps the pipe from filling up while the server runs
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            first_line.set()
        first_line.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    if not first_line.wait(STARTUP_TIMEOUT) or not lines:
        proc.kill()
        proc.wait()
        reader.join(timeout=10)
        pytest.fail(f"sandbox did not start: {stderr_path.read_text()}")
    return SandboxServer(proc, lines[0], lines, reader=reader)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Callable[..., SandboxServer]]:
    """Factory: `server = sandbox("--seed", "3")`; all servers are stopped at teardown."""
    started: list[SandboxServer] = []

    def start(*args: str) -> SandboxServer:
        server = start_sandbox(args, tmp_path / f"sandbox-{len(started)}.stderr")
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class SandboxASGI:
    """An in-process sandbox: the Starlette app, its ASGI transport, and a ready access token."""

    app: Any
    transport: httpx.ASGITransport
    account: Account
    access_token: str

    def client(self, *, authorized: bool = True) -> httpx.AsyncClient:
        """An AsyncClient on the app; with the bearer token unless `authorized` is false."""
        headers = {"Authorization": f"Bearer {self.access_token}"} if authorized else {}
        return httpx.AsyncClient(
            transport=self.transport, base_url="http://sandbox", headers=headers
        )


@pytest.fixture
def sandbox_asgi() -> Callable[..., SandboxASGI]:
    """Factory: `sandbox_asgi(account=None, **SandboxOptions fields)`; default account is small."""

    def build(account: Account | None = None, **options: Any) -> SandboxASGI:
        if account is None:
            account = generate_account(
                seed=1, organizers=20, groups=3, days=30, sessions_per_day=20, now=SANDBOX_NOW
            )
        app = create_app(account, SandboxOptions(**options))
        token = app.state.tokens.issue_access_token()
        return SandboxASGI(app, httpx.ASGITransport(app=app), account, token)

    return build


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
