"""Shared fixtures: a real sandbox server on loopback, and an in-process sandbox over ASGI.

`sandbox(*args)` serves what `retention sandbox --port 0 *args` serves, from a thread of the
test's process, and returns a `SandboxServer`; `sandbox_process(*args)` starts the command as a
real subprocess (for the tests of that command) and waits for the base URL on its first line.
Every server started is stopped at teardown. `sandbox_asgi(**kwargs)` builds the same
application without a server (`SandboxASGI`): faster still, with an injectable clock, and its
live account at `.account`.
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import logging
import os
import socket
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
import uvicorn
from receivers import Receiver
from support import FAST_RATE, TLS

from retention.cli import sandbox as sandbox_cli
from retention.cli.app import COMMAND_MODULES
from retention.cli.sandbox import sandbox as sandbox_command
from retention.sandbox import Account, SandboxOptions, create_app, generate_account

# httpcore and httpx's ASGI transport import the optional `sniffio` (absent here, as in a
# deployment) several times per request, and take asyncio when the import fails. Python does not
# remember a failed import, so each attempt searches sys.path again (encode/httpcore#1103): in
# this process, which makes tens of thousands of requests, a tenth of the CPU. Its absence is
# recorded once for the tests: the import fails at once, as it would after the search.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[1]
SANDBOX_NOW = datetime(2026, 11, 23, tzinfo=UTC)
STARTUP_TIMEOUT = 30.0


@dataclass
class SandboxServer:
    """A running sandbox server (a subprocess, or a thread's uvicorn) and helpers to inspect and
    steer it."""

    proc: subprocess.Popen[str] | None
    base_url: str
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    server: uvicorn.Server | None = None
    port_kept: socket.socket | None = None
    # Called with (method, path) as each request arrives, before it is answered (a server
    # served from a thread only): a test acts at an exact point of a run in its own process.
    on_request: list[Callable[[str, str], None]] = field(default_factory=list)
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"
    refresh_token: str = "sandbox-refresh"

    @property
    def api_url(self) -> str:
        return self.base_url + "/G2M/rest"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth/token"

    @functools.cached_property
    def http(self) -> httpx.Client:
        """One client for the test's own calls to this server (closed when it stops)."""
        return httpx.Client(timeout=10, verify=TLS)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, self.base_url + path, **kwargs)
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
                "RETENTION_RATE_LIMIT": FAST_RATE,
                "RETENTION_CONCURRENCY": "8",
                "RETENTION_SCAN_START": "2026-06-01",
                "PYTHONUNBUFFERED": "1",
                **settings,
            }
        )
        return env

    def access_token(self) -> str:
        """A fresh access token (refreshing with, and rotating, the current refresh token)."""
        response = self.http.post(
            self.token_url,
            auth=(self.client_id, self.client_secret),
            data={"grant_type": "refresh_token", "refresh_token": self.refresh_token},
        )
        response.raise_for_status()
        body = response.json()
        self.refresh_token = body["refresh_token"]
        return str(body["access_token"])

    def stop(self) -> None:
        if "http" in self.__dict__:
            self.http.close()
            del self.http
        if self.server is not None:
            self.server.should_exit = True
        elif self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.server is not None and self.port_kept is None:
            self.port_kept = _kept_closed(int(self.base_url.rsplit(":", 1)[1]))

    def release(self) -> None:
        """Give the port back (teardown): until then a stopped server's port refuses calls."""
        if self.port_kept is not None:
            self.port_kept.close()
            self.port_kept = None

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def _kept_closed(port: int) -> socket.socket | None:
    """The port of a stopped server, bound and not listening: a call to it is refused, where
    another test's server (this process serves many) might otherwise take the port over."""
    keeper = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As the server's own socket had it: the connections it closed still wait out TIME_WAIT.
    # The kernel gives a bound port to no other `bind(port 0)`.
    keeper.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        keeper.bind(("127.0.0.1", port))
    except OSError:
        keeper.close()
        return None
    return keeper


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


def serve_sandbox(args: tuple[str, ...]) -> SandboxServer:
    """What `retention sandbox --port 0 ARGS` serves, from a thread of this process.

    The options are the command's own (parsed by it), the account, options and socket made as
    the command makes them; the server runs on the thread's own event loop. Its log goes to
    this process's stderr, never to the root logger a command in this process configures."""
    _sandbox_log_apart()
    params = sandbox_command.make_context("sandbox", ["--port", "0", *args]).params
    data: Path | None = params["data"]
    account = sandbox_cli._load(data) if data is not None else sandbox_cli._generated(params)
    options = SandboxOptions(
        token_ttl=params["token_ttl"],
        rotate_refresh_tokens=params["rotate_refresh_tokens"],
        rate_limit=params["rate_limit"],
        retry_after="absent" if params["no_retry_after"] else "auto",
        latency_ms=params["latency_ms"],
        fault_rate=params["fault_rate"],
        date_offset=params["date_offset"],
        seed=params["seed"],
    )
    sock = sandbox_cli._bind(params["host"], params["port"])
    base_url = f"http://{params['host']}:{sock.getsockname()[1]}"
    on_request: list[Callable[[str, str], None]] = []
    app = create_app(account, options)

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for hook in list(on_request):
                hook(scope["method"], scope["path"])
        await app(scope, receive, send)

    config = uvicorn.Config(
        watched,
        log_level="warning",
        log_config=None,
        access_log=False,
        lifespan="off",
        date_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    # The socket listens already: calls made before the loop accepts wait in its backlog.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return SandboxServer(
        None, base_url, [base_url], reader=thread, server=server, on_request=on_request
    )


def _sandbox_log_apart() -> None:
    server_log = logging.getLogger("uvicorn")
    if not server_log.handlers:
        server_log.addHandler(logging.StreamHandler(sys.__stderr__))
        server_log.propagate = False
        logging.getLogger("uvicorn.error").addFilter(sandbox_cli._HideDroppedConnections())


@pytest.fixture
def sandbox() -> Iterator[Callable[..., SandboxServer]]:
    """Factory: `server = sandbox("--seed", "3")`, served from a thread; all servers are
    stopped at teardown."""
    started: list[SandboxServer] = []

    def start(*args: str) -> SandboxServer:
        server = serve_sandbox(args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        server.release()


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[Callable[..., SandboxServer]]:
    """Factory: `server = sandbox_process("--seed", "3")`, a real `retention sandbox`
    subprocess; all servers are stopped at teardown."""
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
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on loopback for webhooks and alerts, closed at teardown."""
    made = Receiver()
    yield made
    made.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real-process tests first, in their order, then the rest in theirs: they are the
    longest and mostly wait, so the workers fill those waits with in-process tests instead of
    ending the run on a lone long one."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Import every command's module, then freeze what this process holds so far: the garbage
    collection after each in-process command (support.invoke_retention) then walks only what
    the tests made since, not the whole of what they imported."""
    modules = {
        module
        for entry in COMMAND_MODULES.values()
        for module in ((entry,) if isinstance(entry, str) else entry)
    }
    for module in sorted(modules):
        importlib.import_module(f"retention.cli.{module}")
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _python_processes_only_in_e2e(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that starts Python (the CLI, the daemon, the sandbox) as a process is marked e2e:
    the fast layer (`make unit`) stays in-process."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    popen_init = subprocess.Popen.__init__

    def guarded(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> None:
        command = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
        if command and str(command[0]) == sys.executable:
            pytest.fail(f"{request.node.nodeid} starts {command[:4]}: mark it e2e")
        popen_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
