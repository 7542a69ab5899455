"""`retention config show`: effective values, secrets masked, and the source of each one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

import pytest
from click.testing import CliRunner
from support import invoke_retention

import retention.cli.config  # noqa: F401  (attaches `config` to the root group)
from retention.cli.app import cli
from retention.settings import Settings

SECRET = "canary-config-secret-51ab3e"
TOKEN = "canary-config-refresh-0d77c2"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No RETENTION_* or credentials from the outer environment; an empty TOML file in force."""
    for name in list(os.environ):
        if name.startswith("RETENTION_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("RETENTION_CONFIG", str(empty))
    return empty


def show_json(env: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["config", "show", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.output)["settings"]}


def test_untouched_settings_are_reported_as_defaults() -> None:
    rows = show_json()
    assert rows["rate_limit"] == {
        "name": "rate_limit",
        "env": "RETENTION_RATE_LIMIT",
        "value": 10.0,
        "source": "default",
        "from": None,
    }
    assert rows["client_secret"]["value"] is None
    assert rows["state_dir"]["value"] == "/var/lib/retention"


def test_environment_values_are_named_by_their_variable_and_secrets_masked() -> None:
    rows = show_json({"RETENTION_RATE_LIMIT": "4.5", "RETENTION_CLIENT_SECRET": SECRET})
    assert rows["rate_limit"]["value"] == 4.5
    assert (rows["rate_limit"]["source"], rows["rate_limit"]["from"]) == (
        "environment",
        "RETENTION_RATE_LIMIT",
    )
    assert rows["client_secret"]["value"] == "********"
    assert rows["client_secret"]["source"] == "environment"


def test_toml_values_name_the_file_and_the_environment_overrides_it(tmp_path: Path) -> None:
    toml = tmp_path / "retention.toml"
    toml.write_text('concurrency = 3\nstate_dir = "/srv/retention"\nrate_limit = 2.0\n')
    rows = show_json({"RETENTION_CONFIG": str(toml), "RETENTION_RATE_LIMIT": "7"})
    assert rows["concurrency"]["value"] == 3
    assert (rows["concurrency"]["source"], rows["concurrency"]["from"]) == ("file", str(toml))
    assert rows["state_dir"]["value"] == "/srv/retention"
    assert rows["rate_limit"]["value"] == 7.0
    assert rows["rate_limit"]["source"] == "environment"
    assert rows["config"]["value"] == str(toml)


def test_credentials_directory_secrets_are_masked_and_attributed(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "refresh_token").write_text(TOKEN + "\n")
    result = CliRunner().invoke(
        cli, ["config", "show"], env={"CREDENTIALS_DIRECTORY": str(credentials), "COLUMNS": "1000"}
    )
    assert result.exit_code == 0
    assert TOKEN not in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("refresh_token"))
    assert line.split() == ["refresh_token", "********", "credentials", f"({credentials})"]


def test_table_lists_every_setting_with_its_source(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["config", "show"], env={"RETENTION_CLIENT_ID": "acme", "COLUMNS": "200"}
    )
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["SETTING", "VALUE", "SOURCE"]
    width = lines[0].index("VALUE")
    assert f"{'client_id':<{width}}acme" in result.output, "values start in one column"
    by_name = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert by_name["client_id"] == ["acme", "environment", "(RETENTION_CLIENT_ID)"]
    assert by_name["signing_key"] == ["(unset)", "default"]
    assert set(by_name) == set(Settings.model_fields)


def run_cli(env: dict[str, str]) -> CompletedProcess[str]:
    """`retention config show` as an operator runs it: a real process."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RETENTION_") and k != "CREDENTIALS_DIRECTORY"
    }
    return invoke_retention(
        "config",
        "show",
        env={**base, **env},
        timeout=60,
    )


def refused_file(path: Path, content: str | bytes) -> CompletedProcess[str]:
    """`retention config show` with RETENTION_CONFIG naming PATH, written with `content`:
    refused with exit 2."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    result = run_cli({"RETENTION_CONFIG": str(path)})
    assert result.returncode == 2
    return result


def test_invalid_setting_is_one_message_naming_it_with_exit_2(clean_environment: Path) -> None:
    result = run_cli({"RETENTION_CONFIG": str(clean_environment), "RETENTION_CONCURRENCY": "many"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: invalid settings: RETENTION_CONCURRENCY: ")
    assert "Traceback" not in result.stderr


def test_malformed_toml_file_is_named_with_exit_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    result = refused_file(broken, "rate_limit = = 3\n")
    assert f"RETENTION_CONFIG: {broken} is not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_is_named_with_exit_2(tmp_path: Path) -> None:
    result = run_cli({"RETENTION_CONFIG": str(tmp_path / "absent.toml")})
    assert result.returncode == 2
    assert f"RETENTION_CONFIG names {tmp_path / 'absent.toml'}" in result.stderr


def test_non_utf8_toml_file_is_named_with_exit_2(tmp_path: Path) -> None:
    latin = tmp_path / "latin.toml"
    result = refused_file(latin, b'state_dir = "/srv/r\xe9tention"\n')
    assert f"RETENTION_CONFIG: {latin} is not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_misspelt_key_is_named_as_written_with_a_suggestion(tmp_path: Path) -> None:
    toml = tmp_path / "retention.toml"
    result = refused_file(toml, "rate_limt = 3\n")
    assert result.stderr.splitlines() == [
        f"error: {toml}: 'rate_limt': unknown setting",
        "hint: did you mean rate_limit? (keys are as in the example)",
    ]


@pytest.mark.parametrize(
    "line",
    [
        f'client_secret = "{SECRET}"',
        f'refresh_token = "{TOKEN}"',
        f'smtp_password = "{SECRET}"',
        f'notify_urls = ["mailtos://admin:{SECRET}@mail.example.com"]',
    ],
)
def test_secrets_in_the_toml_file_are_refused_naming_file_key_and_place(
    tmp_path: Path, line: str
) -> None:
    toml = tmp_path / "retention.toml"
    key = line.split(maxsplit=1)[0]
    result = refused_file(toml, line + "\n")
    assert f"error: {toml}: a secret is written in the settings file ({key})" in result.stderr
    assert "$CREDENTIALS_DIRECTORY" in result.stderr
    assert SECRET not in result.stderr
    assert TOKEN not in result.stderr


def test_an_invalid_value_from_the_file_is_named_by_its_key_and_file(tmp_path: Path) -> None:
    toml = tmp_path / "retention.toml"
    result = refused_file(toml, "rate_limit = -1\n")
    assert f"invalid settings: rate_limit in {toml}: " in result.stderr
    assert "RETENTION_RATE_LIMIT" not in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RETENTION_RATE_LIMIT", "inf"),
        ("RETENTION_RATE_LIMIT", "nan"),
        ("RETENTION_PLAN_MAX_AGE_HOURS", "1e308"),
        ("RETENTION_CALL_DEADLINE", "1e300"),
        ("RETENTION_RUN_DEADLINE", "inf"),
    ],
)
def test_non_finite_and_absurd_numbers_are_refused_naming_the_setting(
    clean_environment: Path, name: str, value: str
) -> None:
    result = run_cli({"RETENTION_CONFIG": str(clean_environment), name: value})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: invalid settings: {name}: ")
    assert "Traceback" not in result.stderr
