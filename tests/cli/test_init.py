"""`retention init DIR`: every shipped file written, or nothing when any target exists."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from retention import examples
from retention.cli.app import cli
from retention.cli.init import installed_program, unit_word

TARGETS = ("retention.toml", "policies", "schema", "systemd")
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def listing(folder: Path) -> dict[str, bytes]:
    """Every file below `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def exec_starts(unit: Path) -> list[str]:
    return [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]


def test_init_writes_settings_policies_with_tests_schema_and_units(tmp_path: Path) -> None:
    site = tmp_path / "new" / "site"
    result = CliRunner().invoke(cli, ["init", str(site)])
    assert result.exit_code == 0, result.output
    assert (site / "retention.toml").read_bytes() == examples.SETTINGS.read_bytes()
    assert listing(site / "policies") == listing(examples.POLICIES)
    assert "tests/holds.yaml" in listing(site / "policies")
    assert listing(site / "schema") == listing(examples.SCHEMA)
    assert sorted(listing(site / "systemd")) == sorted(listing(examples.SYSTEMD))
    for unit in (site / "systemd").iterdir():
        shipped = (examples.SYSTEMD / unit.name).read_text()
        # Only ExecStart= differs: the program is this install's, not the documented path.
        kept = [line for line in unit.read_text().splitlines() if line not in exec_starts(unit)]
        assert kept == [line for line in shipped.splitlines() if not line.startswith("ExecStart=")]
        for line in exec_starts(unit):
            assert examples.UNIT_PROGRAM not in line
            assert line.split()[-1] in ("daemon", "--yes")
    for command in (
        "systemctl daemon-reload",
        "systemctl enable --now retention.service",
        f"{site / 'systemd' / 'retention.service'}",
        "/etc/systemd/system/",
    ):
        assert command in result.output


def test_init_into_an_existing_empty_folder_and_empty_targets_writes_all(tmp_path: Path) -> None:
    (tmp_path / "policies").mkdir()
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert listing(tmp_path / "policies") == listing(examples.POLICIES)


@pytest.mark.parametrize("target", TARGETS)
def test_init_writes_nothing_when_one_target_exists(tmp_path: Path, target: str) -> None:
    existing = tmp_path / target
    if target == "retention.toml":
        existing.write_text("client_id = 'mine'\n")
    else:
        existing.mkdir()
        (existing / "mine.yaml").write_text("policies: []\n")
    before = listing(tmp_path)
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 2
    assert f"these exist already: {existing}\n" in result.output
    assert listing(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target]


def test_init_lists_every_target_that_exists(tmp_path: Path) -> None:
    (tmp_path / "retention.toml").write_text("")
    (tmp_path / "systemd").write_text("a file where the folder goes")
    result = CliRunner().invoke(cli, ["init", str(tmp_path)])
    assert result.exit_code == 2
    assert f"{tmp_path / 'retention.toml'}, {tmp_path / 'systemd'}\n" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["retention.toml", "systemd"]


def test_init_refuses_a_file_for_the_folder(tmp_path: Path) -> None:
    (tmp_path / "site").write_text("")
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "site")])
    assert result.exit_code == 2
    assert "is a file" in result.output


@pytest.mark.e2e
def test_units_init_writes_run_this_install_and_pass_systemd_verify(tmp_path: Path) -> None:
    program = Path(sys.executable).parent / "retention"
    done = subprocess.run(
        [str(program), "init", "site"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "site" / "systemd" / "retention.service"
    assert exec_starts(unit) == [f"ExecStart={program} daemon"]
    version = subprocess.run(
        [exec_starts(unit)[0].removeprefix("ExecStart=").split()[0], "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.startswith("retention, version ")
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is absent")
    units = [
        tmp_path / "site" / "systemd" / name
        for name in ("retention.service", "retention-run.service", "retention-run.timer")
    ]
    verified = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    assert "retention" not in verified.stderr


def test_units_run_python_m_retention_when_no_retention_script_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python3"))
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "retention" / "__main__.py"), "init"])
    assert installed_program() == f"{tmp_path}/bin/python3 -m retention"


def test_a_program_path_is_one_word_of_a_unit_command_line() -> None:
    assert unit_word("/opt/retention/venv/bin/retention") == "/opt/retention/venv/bin/retention"
    assert unit_word("/opt/my venv/bin/retention") == '"/opt/my venv/bin/retention"'
    assert unit_word("/opt/100%/bin/retention") == "/opt/100%%/bin/retention"
    assert unit_word('/opt/a"b$/retention') == '"/opt/a\\"b$$/retention"'
