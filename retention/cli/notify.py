"""`retention notify test|preview`: send a test alert, or print the owner notice one would get."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from retention.alerts.deliver import deliver, describe, notify_urls
from retention.cli.app import cli
from retention.errors import InvalidInput, RuntimeFailure
from retention.service.logging import configure_logging, register_settings_secrets
from retention.settings import load_settings


@cli.group("notify")
def notify_group() -> None:
    """Alerts to the operator (RETENTION_NOTIFY) and notices to organizers."""


@notify_group.command("test")
def notify_test() -> None:
    """Send a test alert to every URL of RETENTION_NOTIFY; exit 1 when one does not take it."""
    configure_logging()
    settings = load_settings()
    register_settings_secrets(settings)
    urls = notify_urls(settings)
    if not urls:
        raise InvalidInput(
            "no alert URL is set",
            hint="set RETENTION_NOTIFY (or the credential notify_urls) to one or more Apprise"
            " URLs, separated by spaces or commas",
        )
    now = datetime.now(UTC)
    failed = [
        url
        for url in urls
        if not deliver(
            [url],
            "goto-retention: test alert",
            f"a test alert from `retention notify test` at {now:%Y-%m-%d %H:%M:%S} UTC;"
            " alerts reach this address",
            kind="info",
        )
    ]
    for url in urls:
        click.echo(f"{'FAILED' if url in failed else 'sent'}  {describe(url)}")
    if failed:
        raise RuntimeFailure(
            f"{len(failed)} of {len(urls)} alert URL(s) did not take the test message",
            hint="check each URL named FAILED (its service, address and credentials); the log"
            " says why",
        )
