"""`retention inventory` and `retention auth` as subprocesses against a loopback sandbox."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from support import invoke_retention

REPO = Path(__file__).resolve().parents[2]
SANDBOX_NOW = "2026-11-23T00:00:00Z"


def retention(
    args: list[str], env: dict[str, str], stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return invoke_retention(
        *args,
        env={**os.environ, **env},
        timeout=120,
        input=stdin,
    )


def settings_env(server, state_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "RETENTION_API_BASE_URL": server.api_url,
        "RETENTION_TOKEN_URL": server.token_url,
        "RETENTION_AUTHORIZE_URL": server.base_url + "/oauth/authorize",
        "RETENTION_CLIENT_ID": server.client_id,
        "RETENTION_CLIENT_SECRET": server.client_secret,
        "RETENTION_REFRESH_TOKEN": server.refresh_token,
        "RETENTION_STATE_DIR": str(state_dir),
        "RETENTION_SCAN_START": "2026-09-01",
        "RETENTION_CONFIG": "",
        **extra,
    }


def test_inventory_matches_the_sandbox_under_rate_limit_token_expiry_and_faults(sandbox, tmp_path):
    server = sandbox(
        "--rate-limit",
        "10",
        "--token-ttl",
        "5",
        "--fault-rate",
        "0.05",
        "--latency-ms",
        "50",
        "--organizers",
        "12",
        "--groups",
        "3",
        "--days",
        "80",
        "--sessions-per-day",
        "12",
        "--now",
        SANDBOX_NOW,
        "--seed",
        "5",
    )
    result = retention(["inventory", "--format", "json"], settings_env(server, tmp_path / "state"))
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    state = server.state()
    for key in ("organizers", "sessions", "recordings", "recording_bytes", "attendee_lists"):
        assert counts[key] == state[key], key
    assert _inventory_ids(tmp_path / "state" / "state.db") == set(state["session_ids"])
    assert state["ongoing"] + state["upcoming"] > 0, "the account also holds unfinished sessions"
    log = server.requests()
    per_second = Counter(int(entry["t"]) for entry in log)
    assert max(per_second.values()) <= 10
    assert any(entry.get("fault") for entry in log), "faults were injected and survived"
    assert sum(1 for entry in log if entry["path"] == "/oauth/token") >= 2, "tokens expired"
    assert server.refresh_token not in result.stderr + result.stdout


def _inventory_ids(db_path: Path) -> set[int]:
    with sqlite3.connect(db_path) as connection:
        return {int(row[0]) for row in connection.execute("SELECT session_id FROM sessions")}


def test_inventory_exits_1_and_names_the_failing_windows(sandbox, tmp_path):
    server = sandbox("--organizers", "3", "--groups", "3", "--days", "20", "--now", SANDBOX_NOW)
    server.control(fault_rate=1.0)
    env = settings_env(server, tmp_path / "state", RETENTION_CALL_DEADLINE="2")
    result = retention(["inventory", "--format", "json"], env)
    assert result.returncode == 1
    assert "error:" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.e2e
def test_auth_login_stores_the_refresh_token_and_status_reports_it(sandbox, tmp_path):
    server = sandbox("--organizers", "2", "--groups", "1", "--days", "5", "--now", SANDBOX_NOW)
    env = settings_env(server, tmp_path / "state")
    del env["RETENTION_REFRESH_TOKEN"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "retention", "auth", "login"],
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    authorize_url = proc.stdout.readline().strip()
    redirect = httpx.get(authorize_url, follow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    out, err = proc.communicate(redirect.headers["location"] + "\n", timeout=60)
    assert proc.returncode == 0, err
    assert "logged in as" in out
    stored = json.loads((tmp_path / "state" / "refresh_token.json").read_text())
    assert stored["refresh_token"] not in out + err
    status = retention(["auth", "status", "--check"], env)
    assert status.returncode == 0, status.stderr
    assert "obtained" in status.stdout
    assert "accepted" in status.stdout
    assert "warning" not in status.stderr
