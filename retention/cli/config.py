"""`retention config show`: every effective setting, secrets masked, and where each came from."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr
from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    TomlConfigSettingsSource,
)
from rich.text import Text

from retention.cli.app import cli
from retention.cli.tables import FitTable, console_for
from retention.errors import SettingsError
from retention.service.logging import redact_text
from retention.settings import CredentialsSource, Settings, config_file_path, load_settings

MASKED = "********"
UNSET = "(unset)"


@dataclass(frozen=True)
class Provenance:
    """Where a setting's value came from: a kind and the variable, file or directory."""

    kind: str  # default | environment | file | credentials
    detail: str | None = None

    def describe(self) -> str:
        """`environment (RETENTION_RATE_LIMIT)`, `file /etc/retention/retention.toml`, …"""
        if self.kind == "file":
            return f"file {self.detail}"
        return f"{self.kind} ({self.detail})" if self.detail else self.kind


def _sources_in_priority_order() -> tuple[PydanticBaseSettingsSource, ...]:
    """The very sources Settings reads, in the order it lets them win."""
    try:
        return Settings.settings_customise_sources(
            Settings,
            init_settings=InitSettingsSource(Settings, init_kwargs={}),
            env_settings=EnvSettingsSource(Settings),
            dotenv_settings=DotEnvSettingsSource(Settings, env_file=None),
            file_secret_settings=SecretsSettingsSource(Settings),
        )
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"RETENTION_CONFIG: {config_file_path()} is not valid TOML: {exc}",
            hint="fix the file, or point RETENTION_CONFIG at another one",
        ) from None


def _provenance_of(source: PydanticBaseSettingsSource, name: str) -> Provenance:
    if isinstance(source, EnvSettingsSource):
        return Provenance("environment", f"RETENTION_{name.upper()}")
    if isinstance(source, TomlConfigSettingsSource):
        return Provenance("file", str(config_file_path()))
    if isinstance(source, CredentialsSource):
        return Provenance("credentials", os.environ.get("CREDENTIALS_DIRECTORY"))
    return Provenance(type(source).__name__)


def provenance() -> dict[str, Provenance]:
    """For every setting, the source whose value is in force (`default` when none gave one)."""
    found: dict[str, Provenance] = {}
    for source in _sources_in_priority_order():
        for name in source():
            found.setdefault(name, _provenance_of(source, name))
    return {name: found.get(name, Provenance("default")) for name in Settings.model_fields}


def _shown(value: Any) -> Any:
    """A JSON-ready value with secrets masked; free text is redacted in case it embeds one."""
    if isinstance(value, SecretStr):
        return MASKED
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str):
        return redact_text(value)
    return value


def effective_settings() -> list[dict[str, Any]]:
    """One row per setting: name, environment variable, value (masked), source."""
    origins = provenance()  # first: it reports a malformed TOML file by name
    settings = load_settings()
    values = {name: getattr(settings, name) for name in Settings.model_fields}
    if values["config"] is None:
        # Without RETENTION_CONFIG the default file is still read when it exists: say so.
        values["config"] = config_file_path()
    return [
        {
            "name": name,
            "env": f"RETENTION_{name.upper()}",
            "value": _shown(values[name]),
            "source": origins[name].kind,
            "from": origins[name].detail,
        }
        for name in Settings.model_fields
    ]


def _print_table(rows: list[dict[str, Any]]) -> None:
    """An aligned table when every name and value fits whole on its line, else one
    `name = value  # source` line per setting: `config show | grep rate_limit` always finds the
    whole setting, whatever the width."""
    console = console_for()
    table = FitTable(plain=True)
    table.column("SETTING", "whole")
    table.column("VALUE", "whole")
    table.column("SOURCE", "words")
    lines = []
    for row in rows:
        value = UNSET if row["value"] is None else str(row["value"])
        source = Provenance(row["source"], row["from"]).describe()
        table.row(row["name"], value, source)
        lines.append(f"{row['name']} = {value}  # {source}")
    if table.fits(console.width):
        table.print(console)
        return
    for line in lines:
        console.print(Text(line), soft_wrap=True)


@cli.group("config")
def config_group() -> None:
    """Inspect the service's settings."""


@config_group.command("show")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output as an aligned table or as JSON.",
)
def show(output_format: str) -> None:
    """Print every effective setting, secrets masked, and where each value came from.

    Sources, strongest first: the environment (RETENTION_*), the TOML file
    (RETENTION_CONFIG, default /etc/retention/retention.toml), the systemd credentials
    directory ($CREDENTIALS_DIRECTORY), then the built-in default.
    """
    rows = effective_settings()
    if output_format == "json":
        click.echo(json.dumps({"settings": rows}, indent=2))
    else:
        _print_table(rows)
