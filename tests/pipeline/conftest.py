"""Fixtures for the pipeline tests: a sandbox, settings pointing at it, and the real CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import Deployment

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
