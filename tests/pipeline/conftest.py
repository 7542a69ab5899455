"""Fixtures for the pipeline tests: a sandbox, settings pointing at it, and the real CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import FAST_RATE, Deployment, deploy

from retention.sandbox.policies import THREE_ACTIONS

POLICIES = THREE_ACTIONS


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Deployment]:
    """Factory: a sandbox started with `args` and a deployment of the service against it."""

    def build(*args: str, policies: str = POLICIES, rate_limit: str = FAST_RATE) -> Deployment:
        server = sandbox("--seed", "7", "--days", "100", "--sessions-per-day", "3", *args)
        return deploy(server, tmp_path, policies, RETENTION_RATE_LIMIT=rate_limit)

    return build
