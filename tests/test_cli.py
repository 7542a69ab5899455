"""The root command: version, help, and the usage exit code."""

import importlib
import importlib.metadata
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import retention
import retention.cli
from retention.cli.app import COMMAND_MODULES, cli
from retention.cli.variables import NOT_SETTINGS, unknown_variables


def test_help_lists_the_root_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "GoTo Meeting" in result.output


def test_unknown_command_is_a_usage_error_with_exit_2() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2


def test_a_mistyped_command_suggests_the_nearest_and_exits_2() -> None:
    result = CliRunner().invoke(cli, ["paln"])
    assert result.exit_code == 2
    assert "No such command 'paln'. Did you mean 'plan'" in result.output


def test_a_mistyped_subcommand_suggests_within_its_group() -> None:
    result = CliRunner().invoke(cli, ["audit", "verfiy"])
    assert result.exit_code == 2
    assert "Did you mean 'verify'?" in result.output


def test_a_command_like_none_suggests_nothing() -> None:
    result = CliRunner().invoke(cli, ["xyzzy"])
    assert result.exit_code == 2
    assert "No such command 'xyzzy'." in result.output
    assert "Did you mean" not in result.output


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


def test_version_is_the_package_version_and_the_installed_metadata_agrees() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"retention, version {retention.__version__}\n"
    assert importlib.metadata.version("goto-retention") == retention.__version__


def test_shell_completion_completes_command_names() -> None:
    env = {"_RETENTION_COMPLETE": "bash_complete", "COMP_WORDS": "retention in", "COMP_CWORD": "1"}
    done = CliRunner().invoke(cli, [], env=env, prog_name="retention")
    assert done.exit_code == 0, done.output
    assert done.output.split() == ["plain,init", "plain,inventory"]


def test_a_mistyped_variable_is_warned_once_on_stderr_naming_the_nearest() -> None:
    result = CliRunner().invoke(cli, ["schema"], env={"RETENTION_RATE_LIMT": "3"})
    assert result.exit_code == 0
    json.loads(result.stdout)  # the JSON on stdout is untouched
    warnings = [line for line in result.stderr.splitlines() if "RETENTION_RATE_LIMT" in line]
    assert warnings == [
        "warning: RETENTION_RATE_LIMT is not a setting and is ignored"
        " (did you mean RETENTION_RATE_LIMIT?)"
    ]


def test_settings_and_the_documented_variables_are_not_warned_about() -> None:
    env = {
        "RETENTION_RATE_LIMIT": "3",
        "RETENTION_FAILPOINTS": "",
        "RETENTION_HYPOTHESIS_EXAMPLES": "5",
        "retention_state_dir": "/tmp",  # settings read variables in any case
    }
    assert unknown_variables(env) == []
    assert unknown_variables({"RETENTION_XYZZY_PLUGH": "1"}) == [("RETENTION_XYZZY_PLUGH", None)]
    result = CliRunner().invoke(cli, ["schema"], env=env)
    assert "warning" not in result.stderr


def test_the_allow_list_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in NOT_SETTINGS:
        assert f"`{name}`" in readme
