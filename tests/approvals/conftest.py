"""Fixtures for the approval tests: approvers' keys made with ssh-keygen and a deployment of the
service against a sandbox (with the settings a test gives)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from approvers import Approver, make_key
from support import FAST_RATE, Deployment, deploy

from retention.sandbox.policies import RECORDINGS_30D


@pytest.fixture
def approver(tmp_path: Path) -> Callable[[str], Approver]:
    """Factory: a new Ed25519 key for the named approver."""
    return lambda name: make_key(tmp_path / "keys", name)


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Deployment]:
    """Factory: the service against a sandbox, with the given settings (RETENTION_* names)."""

    def build(policies: str = RECORDINGS_30D, **settings: str) -> Deployment:
        server = sandbox("--seed", "7", "--days", "100", "--sessions-per-day", "3")
        return deploy(server, tmp_path, policies, RETENTION_RATE_LIMIT=FAST_RATE, **settings)

    return build
