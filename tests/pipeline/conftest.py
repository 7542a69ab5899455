"""Fixtures for the pipeline tests: a sandbox, settings pointing at it, and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

POLICIES = """
policies:
  - name: recordings-30d
    description: Recordings go 30 days after the session ended.
    action: delete_recordings
    after: 30d
    match: {has_recording: true}
  - name: attendees-60d
    description: Attendee lists go after 60 days.
    action: delete_attendees
    after: 60d
    match: {min_attendees: 1}
  - name: sessions-90d
    description: Whole sessions go after 90 days.
    action: delete_session
    after: 90d
"""


@dataclass
class Deployment:
    """A state directory, a policy folder and the environment that points the CLI at a sandbox."""

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
        self, *args: str, check: bool = False, **kwargs: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run `python -m retention ARGS` as a real subprocess against the sandbox."""
        result = subprocess.run(
            [sys.executable, "-m", "retention", *args],
            env=self.env,
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=240,
            check=False,
            **kwargs,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"retention {' '.join(args)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def popen(self, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "retention", *args],
            env={**self.env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )

    def events(self) -> list[dict[str, Any]]:
        """Every audit event, read back through `retention audit export --format jsonl`."""
        out = self.cli("audit", "export", "--format", "jsonl", check=True).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def deletes(self, since: int = 0) -> list[dict[str, Any]]:
        """DELETE requests the sandbox received (from request index `since` on)."""
        return [r for r in self.server.requests(since) if r["method"] == "DELETE"]


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Deployment]:
    """Factory: a sandbox started with `args` and a deployment of the service against it."""

    def build(*args: str, policies: str = POLICIES, rate_limit: str = "100") -> Deployment:
        server = sandbox("--seed", "7", "--days", "150", "--sessions-per-day", "6", *args)
        policy_dir = tmp_path / "policies"
        policy_dir.mkdir(exist_ok=True)
        (policy_dir / "policies.yaml").write_text(policies)
        env = server.service_env(tmp_path / "state", policy_dir, RETENTION_RATE_LIMIT=rate_limit)
        return Deployment(server, tmp_path, env)

    return build
