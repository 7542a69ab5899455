"""What the benchmarks share: `retention` child processes, a sandbox child, and its environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def retention(*args: str, **popen: Any) -> subprocess.Popen[str]:
    """`python -m retention ARGS` as a child in text mode, run in the repository unless `cwd`."""
    options: dict[str, Any] = {"cwd": REPO, "text": True, **popen}
    return subprocess.Popen([sys.executable, "-m", "retention", *args], **options)


def start_sandbox(*args: str, **popen: Any) -> tuple[subprocess.Popen[str], str]:
    """`retention sandbox --port 0 ARGS` on a free loopback port, and the base URL it prints."""
    proc = retention("sandbox", "--port", "0", *args, stdout=subprocess.PIPE, **popen)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def service_env(base: str, root: Path, **settings: str) -> dict[str, str]:
    """The caller's environment less its RETENTION_* variables, pointing the service at the
    sandbox at BASE with the sandbox's credentials, its state in ROOT/state and its policies in
    ROOT/policies; `settings` (e.g. `RETENTION_RATE_LIMIT="100"`) are added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env.update(
        RETENTION_API_BASE_URL=f"{base}/G2M/rest",
        RETENTION_TOKEN_URL=f"{base}/oauth/token",
        RETENTION_CLIENT_ID="sandbox-client",
        RETENTION_CLIENT_SECRET="sandbox-secret",
        RETENTION_REFRESH_TOKEN="sandbox-refresh",
        RETENTION_STATE_DIR=str(root / "state"),
        RETENTION_POLICY_DIR=str(root / "policies"),
        **settings,
    )
    return env
