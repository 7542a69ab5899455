"""Secrets are masked where they occur as values; a word of a message is never one of them."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import structlog
from click.testing import CliRunner

import retention.cli.config  # noqa: F401  (attaches `config` to the root group)
from retention.alerts import deliver
from retention.audit.checkpoint import Checkpoint, log_checkpoint
from retention.cli.app import RetentionGroup, cli
from retention.errors import InvalidInput
from retention.service.logging import (
    configure_logging,
    redact_text,
    register_secret,
    register_settings_secrets,
)
from retention.settings import Settings

# The docs' own example: a URL whose path is a word of the product's name, and no secret.
DOCS_URL = "json://127.0.0.1:8099/retention"
PASSWORD = "Mask-Canary-Pass-7731"
APPRISE = f"mailtos://ops:{PASSWORD}@mail.example.com"
TOKEN_URL = "discord://4242/MaskCanaryWebhookToken9f3e"
CLIENT_SECRET = "mask-canary-client-secret-2b7c"
REFRESH_TOKEN = "mask-canary-refresh-token-8e41"
SECRETS = (PASSWORD, "MaskCanaryWebhookToken9f3e", CLIENT_SECRET, REFRESH_TOKEN)
HINT = "make a plan with `retention plan --out FILE`"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """Settings with the docs' alert URL beside real secrets, registered as a run registers
    them (the settings, then the alert URLs when an alert is sent)."""
    for name in list(os.environ):
        if name.startswith("RETENTION_") or name == "CREDENTIALS_DIRECTORY":
            monkeypatch.delenv(name)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    environ = {
        "RETENTION_CONFIG": str(empty),
        "RETENTION_NOTIFY": f"{DOCS_URL}, {APPRISE} {TOKEN_URL}",
        "RETENTION_CLIENT_SECRET": CLIENT_SECRET,
        "RETENTION_REFRESH_TOKEN": REFRESH_TOKEN,
        "RETENTION_CLIENT_ID": "acme-retention",  # as in docs/deploy.md
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    register_settings_secrets(settings)
    deliver.notify_urls(settings)
    return settings


@pytest.fixture
def log_lines(registered: Settings) -> Iterator[io.StringIO]:
    """JSON log lines written to a buffer (logging put back afterwards)."""
    root = logging.getLogger()
    handlers, level, config = list(root.handlers), root.level, structlog.get_config()
    out = io.StringIO()
    configure_logging(json=True, stream=out, journal_socket=None)
    try:
        yield out
    finally:
        root.handlers, root.level = handlers, level
        structlog.configure(**config)


def test_a_url_path_word_is_not_a_secret_and_messages_keep_it(log_lines: io.StringIO) -> None:
    checkpoint = Checkpoint(log_id="ab" * 16, rows=3, head="c" * 64, time="2026-11-23T00:00:00Z")
    log_checkpoint(checkpoint, seq=4, path=Path("/var/lib/retention/audit-checkpoints.jsonl"))
    structlog.get_logger("retention.run").warning("nothing to apply", hint=HINT, url=DOCS_URL)
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines[0]["message_id"] == "goto-retention-checkpoint"
    assert lines[0]["checkpoint_file"] == "/var/lib/retention/audit-checkpoints.jsonl"
    assert lines[1]["logger"] == "retention.run"
    assert lines[1]["hint"] == HINT
    assert lines[1]["url"] == DOCS_URL
    assert "***" not in log_lines.getvalue()


def test_real_secrets_are_still_masked_in_every_log_field(log_lines: io.StringIO) -> None:
    log = structlog.get_logger("retention.run")
    log.error(
        "alert failed",
        to=APPRISE,
        note=f"password {PASSWORD} and token {TOKEN_URL}",
        error=ValueError(f"refused {CLIENT_SECRET!r}"),
        nested={"attempt": [f"refresh with {REFRESH_TOKEN}"]},
    )
    text = log_lines.getvalue()
    for secret in SECRETS:
        assert secret not in text
    line = json.loads(text)
    assert line["to"] == "***"
    assert line["note"] == "password *** and token ***"
    assert line["error"] == "refused '***'"


def test_errors_keep_their_words_and_mask_the_secrets(registered: Settings) -> None:
    @click.group(cls=RetentionGroup)
    def group() -> None:
        pass

    @group.command()
    def fail() -> None:
        raise InvalidInput(f"the API refused {CLIENT_SECRET} at {DOCS_URL}", hint=HINT)

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == 2
    assert f"error: the API refused *** at {DOCS_URL}" in result.output
    assert f"hint: {HINT}" in result.output


def test_reprs_never_carry_a_secret(registered: Settings) -> None:
    shown = repr(registered) + str(registered)
    for secret in SECRETS:
        assert secret not in shown


def test_config_show_keeps_paths_and_masks_secrets(registered: Settings) -> None:
    result = CliRunner().invoke(cli, ["config", "show", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["settings"]}
    assert rows["state_dir"]["value"] == "/var/lib/retention"
    assert rows["client_id"]["value"] == "acme-retention"
    assert rows["notify"]["value"] == "********"
    assert rows["client_secret"]["value"] == "********"
    for secret in SECRETS:
        assert secret not in result.output
    table = CliRunner().invoke(cli, ["config", "show"], env={"COLUMNS": "200"})
    assert "/var/lib/retention" in table.output
    assert "acme-retention" in table.output
    for secret in SECRETS:
        assert secret not in table.output


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        # A short or word-like value is masked only where it stands alone.
        ("hunter2-ok", "login hunter2-ok failed", "login *** failed"),
        ("hunter2-ok", "hunter2-okay is another word", "hunter2-okay is another word"),
        ("horse-battery-staple", "goto-horse-battery-staple-x", "goto-horse-battery-staple-x"),
        ("horse-battery-staple", "pw=horse-battery-staple&", "pw=***&"),
        # A long value not made of words (a token, a key line) is masked wherever it occurs.
        ("Q2hhbmdlTWVQbGVhc2U0Mg", "'\\nQ2hhbmdlTWVQbGVhc2U0Mg\\n'", "'\\n***\\n'"),
    ],
)
def test_a_value_is_masked_as_a_value(secret: str, text: str, expected: str) -> None:
    register_secret(secret)
    assert redact_text(text) == expected


def test_prose_about_credentials_is_left_as_written() -> None:
    prose = (
        "the bearer token expired; rotate the password that was in a URL; "
        "refresh_token rotated; basic settings"
    )
    assert redact_text(prose) == prose
    assert redact_text("Authorization: Bearer eyJhbGci.OiJ9x") == "Authorization: Bearer ***"
    assert redact_text("smtp://ops:pw@mail.example.com") == "smtp://ops:***@mail.example.com"
    assert redact_text('{"password": "p4ss"}') == '{"password": "***"}'


def test_very_short_values_are_not_registered() -> None:
    register_secret("1234")
    assert redact_text("rows 1234 to 5678") == "rows 1234 to 5678"
