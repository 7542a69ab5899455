"""Test support shared by the suites that run the real CLI against a sandbox.

`invoke_retention` runs the `retention` command in this process (click's runner, the process
state the command touches put back afterwards); `run_retention` runs it as a real subprocess,
for what only a process shows (signals, kill -9, failpoints, the lock between two processes).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog
from click.testing import CliRunner

from retention import failpoints
from retention.service import logging as service_logging

REPO = Path(__file__).resolve().parents[1]
# The client's rate limit in the tests' deployments, unless a test is about the pace: the
# limiter's spacing is tested on its own (tests/goto/test_pacing.py) and under load
# (tests/robustness/faults), and at GoTo's pace each test would wait on it for seconds.
FAST_RATE = "1000"
# The tests' own HTTP clients (to the sandbox, the metrics endpoint) share one TLS context:
# httpx makes one per client otherwise, reading the CA bundle each time (~25 ms).
TLS = ssl.create_default_context()
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_module(
    module: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 240,
    check: bool = False,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """`python -m MODULE ARGS` as a real subprocess, its output captured as text."""
    command = [sys.executable, "-m", module, *args]
    captured: dict[str, Any] = {"capture_output": True, "text": True, **kwargs}
    return subprocess.run(command, env=env, cwd=cwd, timeout=timeout, check=check, **captured)


def run_retention(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """`python -m retention ARGS` as a real subprocess (`run_module`'s options)."""
    return run_module("retention", *args, **options)


_CA_CONTEXTS: dict[tuple[str, int, int], ssl.SSLContext] = {}


@contextlib.contextmanager
def _ca_contexts_shared() -> Iterator[None]:
    """One TLS context per CA file (as it is on disk) for every command in this process:
    reading a bundle such as httpx's default costs tens of milliseconds a client, as much as a
    command's own work against the sandbox, which speaks plain HTTP. A changed file is read
    again; any other way of making a context is left as it is."""
    create = ssl.create_default_context

    def shared(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        if args or set(kwargs) != {"cafile"}:
            return create(*args, **kwargs)
        stat = os.stat(kwargs["cafile"])
        key = (str(kwargs["cafile"]), stat.st_mtime_ns, stat.st_size)
        if key not in _CA_CONTEXTS:
            _CA_CONTEXTS[key] = create(cafile=kwargs["cafile"])
        return _CA_CONTEXTS[key]

    ssl.create_default_context = shared
    try:
        yield
    finally:
        ssl.create_default_context = create


@contextlib.contextmanager
def _process_state_kept(cwd: Path) -> Iterator[None]:
    """Put back what a command changes in its process: the environment, the working directory,
    logging and structlog's configuration, the secrets registered for masking, the signal
    handlers and the failpoint counters."""
    environ = dict(os.environ)
    here = Path.cwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in service_logging.QUIET_LOGGERS}
    structlog_config = structlog.get_config()
    secrets = dict(service_logging._known_secrets)
    handlers_by_signal = {signum: signal.getsignal(signum) for signum in _SIGNALS}
    hits = failpoints._hits.copy()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(environ)
        root.handlers = handlers
        root.setLevel(level)
        for name, quiet_level in quiet.items():
            logging.getLogger(name).setLevel(quiet_level)
        structlog.configure(**structlog_config)
        service_logging._known_secrets.clear()
        service_logging._known_secrets.update(secrets)
        for signum, handler in handlers_by_signal.items():
            signal.signal(signum, handler)
        failpoints._hits.clear()
        failpoints._hits.update(hits)
        # What the command left for the collector (a database connection among them) is closed
        # now, as its process's exit would have: a WAL file is folded back at its last close.
        gc.collect()


def invoke_retention(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    input: str | None = None,
    stdin: None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """`retention ARGS` in this process, with exactly `env` (default: this process's) as its
    environment.

    The result reads like a subprocess's: exit code, stdout and stderr apart, and an exception
    the CLI lets through printed as its traceback with exit code 1, as Python would. Standard
    input is never a terminal (`stdin` is subprocess.run's name for that: None); `timeout` is
    the test's own (pytest-timeout), as a hung command in this process hangs its test.
    """
    env = dict(os.environ if env is None else env)
    if failpoints.ENV in env:
        raise AssertionError("a failpoint kills its process: run this command with process=True")
    from retention.cli import cli  # noqa: PLC0415  (the CLI's modules load when first asked for)

    unset: dict[str, str | None] = {key: None for key in os.environ if key not in env}
    runner = CliRunner()
    with _process_state_kept(cwd), _ca_contexts_shared():
        result = contextvars.copy_context().run(
            runner.invoke,
            cli,
            list(args),
            input=input,
            env={**unset, **env},
            prog_name="retention",
        )
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert result.exc_info is not None
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(
        ["retention", *args], result.exit_code, result.stdout, stderr
    )


@dataclass
class Deployment:
    """A sandbox, a state directory and a policy folder, and the environment tying them."""

    server: Any
    root: Path
    env: dict[str, str]
    # Every command as a real process (an end-to-end test), not only those given `process`.
    processes: bool = False

    @property
    def policy_dir(self) -> Path:
        return Path(self.env["RETENTION_POLICY_DIR"])

    @property
    def state_dir(self) -> Path:
        return Path(self.env["RETENTION_STATE_DIR"])

    def cli(
        self,
        *args: str,
        check: bool = False,
        timeout: float = 240,
        extra_env: dict[str, str] | None = None,
        process: bool = False,
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run `retention ARGS` against the sandbox: in this process, or with `process` as a
        real subprocess (`python -m retention`; tests doing so are marked e2e)."""
        env = {**self.env, **(extra_env or {})}
        if process or self.processes:
            result = run_retention(*args, env=env, timeout=timeout, **kwargs)
        else:
            result = invoke_retention(*args, env=env, timeout=timeout, **kwargs)
        if check and result.returncode != 0:
            raise AssertionError(
                f"retention {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def saved_plan(self, name: str = "plan.json", *args: str) -> Path:
        """`retention plan ARGS --out ROOT/NAME`, which must succeed; the plan file's path."""
        path = self.root / name
        self.cli("plan", *args, "--out", str(path), check=True)
        return path

    def popen(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """Start `python -m retention ARGS` in the background; its stderr is kept."""
        return subprocess.Popen(
            [sys.executable, "-m", "retention", *args],
            env={**self.env, **(extra_env or {})},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def events(self) -> list[dict[str, Any]]:
        """Every audit event, read back through `retention audit export --format jsonl`."""
        done = self.cli("audit", "export", "--format", "jsonl", check=True)
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Every request the sandbox received (from request index `since` on)."""
        received: list[dict[str, Any]] = self.server.requests(since)
        return received

    def deletes(self, since: int = 0) -> list[dict[str, Any]]:
        """DELETE requests the sandbox received (from request index `since` on)."""
        return [r for r in self.requests(since) if r["method"] == "DELETE"]


D = TypeVar("D", bound=Deployment)


def deploy(
    server: Any, root: Path, policies: str, kind: type[D] = Deployment, **settings: str
) -> D:  # type: ignore[assignment]
    """The service against `server`: `policies` in ROOT/policies, its state in ROOT/state."""
    policy_dir = root / "policies"
    policy_dir.mkdir(parents=True, exist_ok=True)
    (policy_dir / "policies.yaml").write_text(policies)
    return kind(server, root, server.service_env(root / "state", policy_dir, **settings))


@contextlib.contextmanager
def reaped(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Kill (and reap) the process if the block leaves it running, failed assertion or not."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
