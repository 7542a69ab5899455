"""Off a terminal, `run`, `apply` and `audit verify` log their progress (scan, removals, rows)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from click.testing import CliRunner
from support import Deployment

import retention.cli.audit
import retention.cli.inventory
import retention.cli.plan  # noqa: F401  (attach their commands to the root group)
from retention.cli.app import cli
from retention.service import progress

# The account is a sandbox subprocess.
pytestmark = pytest.mark.e2e


@pytest.fixture
def every_report_logged(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No interval between lines (so that no test waits 30 s); logging put back afterwards."""
    monkeypatch.setattr(progress, "INTERVAL_SECONDS", 0.0)
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    try:
        yield
    finally:
        root.handlers, root.level = handlers, level
        structlog.configure(**config)


def progress_lines(stderr: str) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in found if line["event"] == "progress"]


def test_a_piped_inventory_logs_its_scan_from_the_start(
    deployment: Deployment, every_report_logged: None
) -> None:
    scanned = CliRunner().invoke(cli, ["inventory", "--format", "json"], env=deployment.env)
    assert scanned.exit_code == 0, scanned.stderr
    json.loads(scanned.stdout)
    lines = progress_lines(scanned.stderr)
    assert lines[0]["task"] == "scan"
    assert (lines[0]["done"], lines[0]["total"]) == (0, None)
    assert lines[-1]["done"] == lines[-1]["total"] > 0


def test_a_piped_run_and_verify_log_their_progress(
    deployment: Deployment, every_report_logged: None
) -> None:
    runner = CliRunner()
    ran = runner.invoke(cli, ["run", "--yes"], env=deployment.env)
    assert ran.exit_code == 0, ran.output + ran.stderr
    lines = progress_lines(ran.stderr)
    scan = [line for line in lines if line["task"] == "scan"]
    removals = [line for line in lines if line["task"] == "removals"]
    assert scan, ran.stderr
    assert removals, ran.stderr
    assert scan[-1]["done"] == scan[-1]["total"] > 0
    assert scan[-1]["unit"] == "windows"
    assert removals[-1]["done"] == removals[-1]["total"] == len(deployment.deletes())
    assert all({"rate_per_s", "eta_s", "elapsed_s"} <= set(line) for line in lines)

    verified = runner.invoke(cli, ["audit", "verify", "--format", "json"], env=deployment.env)
    assert verified.exit_code == 0, verified.stderr
    assert json.loads(verified.stdout)["result"]  # stdout holds the report alone
    rows = [line for line in progress_lines(verified.stderr) if line["task"] == "verify"]
    assert rows
    assert rows[-1]["unit"] == "rows"
    assert rows[-1]["total"] >= rows[-1]["done"]
