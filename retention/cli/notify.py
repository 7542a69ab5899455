"""`retention notify test|preview`: send a test alert, or print the owner notice one would get."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from retention.alerts.deliver import deliver, describe, notify_urls
from retention.alerts.notices import render
from retention.alerts.owners import due_notices
from retention.cli.app import cli
from retention.errors import InvalidInput, RuntimeFailure
from retention.service.context import RunContext, load_policies, planner
from retention.service.logging import configure_logging, register_settings_secrets
from retention.service.statedir import read_only
from retention.settings import load_settings

DEFAULT_PREVIEW_DAYS = 7


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


@notify_group.command("preview")
@click.option("--organizer", help="The organizer's email or key (default: the first one due).")
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    help="Days ahead (default RETENTION_OWNER_NOTICE_DAYS, else 7).",
)
def notify_preview(organizer: str | None, days: int | None) -> None:
    """Print the owner notice one organizer would get now, from the last inventory (no scan).

    Nothing is sent and nothing is marked noticed.
    """
    configure_logging()
    settings = load_settings()
    register_settings_secrets(settings)
    ahead = days or settings.owner_notice_days or DEFAULT_PREVIEW_DAYS
    settings = settings.model_copy(update={"owner_notice_days": ahead})
    ctx = RunContext(settings)
    policy_set = load_policies(ctx)
    with read_only(settings, "preview a notice from") as db:
        notices = due_notices(db, policy_set, ahead, planner(ctx), datetime.now(UTC))
    chosen = [
        n for n in notices if organizer is None or organizer in (n.email, str(n.organizer_key))
    ]
    if not chosen:
        who = f"organizer {organizer}" if organizer else "any organizer"
        click.echo(f"no removal becomes due within {ahead} day(s) for {who}: no notice to send")
        return
    notice = chosen[0]
    subject, body = render(notice, settings)
    click.echo(f"To: {notice.email or '(no address known)'}")
    click.echo(f"Subject: {subject}")
    click.echo("")
    click.echo(body, nl=False)
    if len(notices) > 1 and organizer is None:
        click.echo(f"\n({len(notices) - 1} other organizer(s) would get a notice too)")
