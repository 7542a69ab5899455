"""The root command: version, help, and the usage exit code."""

import importlib
import pkgutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import retention.cli
from retention.cli.app import COMMAND_MODULES, cli


def test_help_lists_the_root_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "GoTo Meeting" in result.output


def test_unknown_command_is_a_usage_error_with_exit_2() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_every_command_is_loaded_from_the_module_that_defines_it() -> None:
    defined: dict[str, str] = {}
    for module in pkgutil.iter_modules(retention.cli.__path__):
        before = set(cli.commands)
        importlib.import_module(f"retention.cli.{module.name}")
        defined.update(dict.fromkeys(set(cli.commands) - before, module.name))
    assert set(cli.commands) == set(COMMAND_MODULES)
    # A module imported for an earlier one adds nothing here; every other command maps home.
    assert {name: COMMAND_MODULES[name] for name in defined} == defined


@pytest.mark.e2e
def test_a_command_runs_in_a_fresh_interpreter_that_loaded_only_its_module() -> None:
    probe = (
        "import sys; from retention.cli import main; sys.argv = ['retention', 'validate', "
        "'--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('retention.cli.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = out.strip().splitlines()[-1]
    assert "retention.cli.policy" in loaded
    assert "retention.cli.sandbox" not in loaded
    assert "retention.cli.daemon" not in loaded
