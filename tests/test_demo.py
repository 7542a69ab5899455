"""`retention demo` tells the whole story against a sandbox and leaves a verified record."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from support import run_retention

from retention import examples
from retention.cli.app import cli
from retention.cli.demo import demo_policies


@pytest.mark.e2e
def test_demo_in_an_empty_folder_runs_every_step_on_the_shipped_examples(tmp_path: Path) -> None:
    result = run_retention("demo", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    for step in range(12):
        assert f"== {step}." in result.stdout
    assert f"$ retention validate {examples.POLICIES}\n" in result.stdout
    assert "Subject: " in result.stdout  # the owner notice previewed
    assert "compliance@example.com" in result.stdout
    assert "Result: CLEAN" in result.stdout
    assert "hold:LIT-2026-014" in result.stdout
    assert "nothing to remove" in result.stderr
    workdir = tmp_path / "demo-state"
    report = (workdir / "report.html").read_text()
    assert report.startswith("<!DOCTYPE html>")
    assert (workdir / "plan.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo-state"]


def test_demo_prefers_the_folder_given_then_a_local_policies_folder(tmp_path: Path) -> None:
    local = tmp_path / "policies"
    assert demo_policies(None, local) == examples.POLICIES
    local.mkdir()
    assert demo_policies(None, local) == local
    assert demo_policies(tmp_path, local) == tmp_path


def test_demo_with_a_missing_policy_folder_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--dir", str(tmp_path), "--policies", str(tmp_path / "absent")]
    )
    assert result.exit_code == 2
    assert f"policy folder {tmp_path / 'absent'} not found" in result.output
    assert list(tmp_path.iterdir()) == []
