"""No credentials in URLs: a user or password in the API's URLs, or a password in the SMTP URL,
is refused at start-up (exit 2, the setting named, the password masked, the credential settings
hinted); a state directory an older version bound to such a URL keeps working, without it."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import retention.cli.config  # noqa: F401  (attaches `config` to the root group)
from retention.cli.app import cli
from retention.engine.state import MIGRATIONS, bound_account, open_state_db
from retention.errors import SettingsError
from retention.settings import load_settings

from .conftest import Service

PASSWORD = "canary-url-password-7e21"
SANDBOX = ("--seed", "5", "--days", "30", "--sessions-per-day", "2")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("RETENTION_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    monkeypatch.setenv("RETENTION_CONFIG", str(empty))
    monkeypatch.setenv("RETENTION_STATE_DIR", str(tmp_path / "state"))


URLS = [
    ("RETENTION_API_BASE_URL", f"https://admin:{PASSWORD}@api.example.com/G2M/rest"),
    ("RETENTION_API_BASE_URL", f"https://{PASSWORD}@api.example.com/G2M/rest"),
    ("RETENTION_TOKEN_URL", f"https://client:{PASSWORD}@auth.example.com/oauth/token"),
    ("RETENTION_SMTP_URL", f"smtp+starttls://mailer:{PASSWORD}@mail.example.com:587"),
]


@pytest.mark.parametrize(("variable", "url"), URLS)
def test_a_credential_in_a_url_is_refused_naming_the_setting_and_masking_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    monkeypatch.setenv(variable, url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    error = caught.value
    assert error.exit_code == 2
    assert variable in error.message
    assert "****@" in error.message
    assert PASSWORD not in f"{error.message} {error.hint}"
    assert "RETENTION_CLIENT_SECRET" in str(error.hint)
    assert "rotate" in str(error.hint)


@pytest.mark.parametrize("command", [["config", "show"], ["run", "--yes"]])
@pytest.mark.parametrize(("variable", "url"), URLS[:1] + URLS[2:])
def test_no_command_starts_or_prints_the_credential(
    command: list[str], variable: str, url: str
) -> None:
    result = CliRunner().invoke(cli, command, env={variable: url})
    assert result.exit_code == 2, result.output
    assert variable in result.output
    assert PASSWORD not in result.output
    assert "Traceback" not in result.output


def test_the_smtp_url_may_still_name_its_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETENTION_SMTP_URL", "smtp+starttls://mailer@mail.example.com:587")
    assert load_settings().smtp_url == "smtp+starttls://mailer@mail.example.com:587"


def test_a_state_directory_bound_to_a_url_with_a_password_keeps_its_account_without_it(
    service: Callable[..., Service],
) -> None:
    dep = service(*SANDBOX)
    dep.cli("run", "--yes", check=True)
    state_db = dep.state_dir / "state.db"
    # What an older version stored when the base URL carried a user and password.
    plain = dep.env["RETENTION_API_BASE_URL"]
    with_password = plain.replace("://", f"://ops:{PASSWORD}@", 1)
    with sqlite3.connect(state_db) as db:
        db.execute("UPDATE account SET api_base_url = ? WHERE id = 1", [with_password])
        db.execute(
            "DELETE FROM _sqlite_migrations WHERE name = 'm006_account_url_without_credentials'"
        )
    db = open_state_db(state_db)
    assert MIGRATIONS.pending(db) == []
    bound = bound_account(db)
    assert bound is not None
    assert bound[0] == plain
    db.close()

    done = dep.cli("run", "--yes")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(state_db) as db:
        stored = db.execute("SELECT api_base_url FROM account").fetchone()[0]
        assert stored == plain
        db.execute("VACUUM")
    assert PASSWORD.encode() not in state_db.read_bytes()
