"""`retention demo` tells the whole story against a sandbox and leaves a verified record."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_retention

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
def test_demo_runs_every_step_and_leaves_a_clean_record_and_a_report(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = run_retention(
        "demo",
        "--dir",
        str(workdir),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for step in range(12):
        assert f"== {step}." in result.stdout
    assert "Subject: " in result.stdout  # the owner notice previewed
    assert "compliance@example.com" in result.stdout
    assert "Result: CLEAN" in result.stdout
    assert "hold:LIT-2026-014" in result.stdout
    assert "nothing to remove" in result.stderr
    report = (workdir / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>")
    assert (workdir / "plan.json").is_file()
