"""Fixtures for the CLI's output tests: a small sandbox account and the service against it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import FAST_RATE, Deployment, deploy

from retention.sandbox.policies import THREE_ACTIONS


@pytest.fixture
def deployment(sandbox: Callable[..., Any], tmp_path: Path) -> Deployment:
    server = sandbox("--seed", "7", "--days", "120", "--sessions-per-day", "2")
    return deploy(server, tmp_path, THREE_ACTIONS, RETENTION_RATE_LIMIT=FAST_RATE)
