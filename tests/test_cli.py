"""The root command: version, help, and the usage exit code."""

from click.testing import CliRunner

from retention.cli.app import cli


def test_help_lists_the_root_group() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "GoTo Meeting" in result.output


def test_unknown_command_is_a_usage_error_with_exit_2() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
