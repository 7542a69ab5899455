"""Test support shared by the suites that run the real CLI against a sandbox subprocess."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]


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


@dataclass
class Deployment:
    """A sandbox, a state directory and a policy folder, and the environment tying them."""

    server: Any
    root: Path
    env: dict[str, str]

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
        **kwargs: Any,
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m retention ARGS` as a real subprocess against the sandbox."""
        result = run_retention(
            *args, env={**self.env, **(extra_env or {})}, timeout=timeout, **kwargs
        )
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
