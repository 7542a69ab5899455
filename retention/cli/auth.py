"""`retention auth login` (authorization-code flow) and `retention auth status`."""

from __future__ import annotations

import asyncio
import secrets
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import click

from retention.cli.app import cli
from retention.cli.tables import output_width, wrap
from retention.errors import InvalidInput
from retention.goto.auth import TokenInfo, TokenManager
from retention.goto.factory import token_manager_from_settings
from retention.goto.tokenstore import TokenStore
from retention.service.lock import acquire
from retention.service.logging import configure_logging, register_secret, register_settings_secrets
from retention.settings import Settings, load_settings

# GoTo refresh tokens live about 30 days; warn a week ahead so that an operator has time.
REFRESH_TOKEN_LIFE = timedelta(days=30)
WARN_AFTER = timedelta(days=23)


@cli.group("auth")
def auth_group() -> None:
    """Obtain and inspect the OAuth refresh token the service uses."""


@auth_group.command("login")
@click.option(
    "--code",
    "answer",
    help="The redirect URL (or only its code) from an earlier authorization; skips the prompt.",
)
def login(answer: str | None) -> None:
    """Run the authorization-code flow and store the refresh token in the state directory."""
    configure_logging()
    settings = _settings()
    state = secrets.token_urlsafe(12)
    query = urlencode(
        {
            "client_id": settings.client_id,
            "response_type": "code",
            "redirect_uri": settings.redirect_uri,
            "state": state,
        }
    )
    if answer is None:
        click.echo(f"{settings.authorize_url}?{query}")
        _echo(
            "Open the URL above as an admin of the account, approve, and paste the URL you are "
            "redirected to (or only its code).",
            err=True,
        )
        answer = click.prompt("redirect URL or code", err=True).strip()
        code = code_from_answer(answer, expected_state=state)
    else:
        code = code_from_answer(answer, expected_state=None)
    register_secret(code)
    manager = token_manager_from_settings(settings, on_secret=register_secret)
    info = asyncio.run(_exchange(manager, code, settings.redirect_uri))
    who = info.principal or "an unnamed principal"
    _echo(f"logged in as {who}; refresh token stored in {manager.store.path}")


def code_from_answer(answer: str, *, expected_state: str | None) -> str:
    """The authorization code from a pasted redirect URL or a bare code."""
    if "://" not in answer and "?" not in answer:
        if not answer:
            raise InvalidInput("no authorization code given", hint="paste the redirect URL")
        return answer
    params = parse_qs(urlsplit(answer).query)
    if "error" in params:
        raise InvalidInput(
            f"the authorization was refused: {params['error'][0]}",
            hint="approve the request as an admin of the account, then try again",
        )
    codes = params.get("code")
    if not codes:
        raise InvalidInput(
            "the redirect URL carries no `code` parameter",
            hint="paste the whole URL the browser was redirected to",
        )
    states = params.get("state")
    if expected_state is not None and states is not None and states[0] != expected_state:
        raise InvalidInput(
            "the redirect URL belongs to another login attempt (its state does not match)",
            hint="open the URL printed by this run of `retention auth login`",
        )
    return codes[0]


async def _exchange(manager: TokenManager, code: str, redirect_uri: str) -> TokenInfo:
    try:
        return await manager.exchange_code(code, redirect_uri)
    finally:
        await manager.aclose()


@auth_group.command("status")
@click.option(
    "--check",
    is_flag=True,
    help="Also ask the token endpoint (a refresh, taken under the state directory's lock).",
)
def status(check: bool) -> None:
    """Show whose token this is and how old it is (no network call unless --check)."""
    configure_logging()
    settings = _settings()
    stored = TokenStore.in_state_dir(settings.state_dir).load()
    now = datetime.now(UTC)
    if stored is not None:
        age = now - stored.obtained_at
        _echo(f"refresh token: stored in the state directory, obtained {_days(age)} ago")
        if stored.principal:
            _echo(f"belongs to: {stored.principal}")
        if age >= WARN_AFTER:
            left = max(timedelta(0), REFRESH_TOKEN_LIFE - age)
            _echo(
                f"warning: refresh tokens live about 30 days; this one has about {_days(left)} "
                "left: run `retention auth login` soon",
                err=True,
            )
    elif settings.refresh_token is not None:
        _echo("refresh token: from RETENTION_REFRESH_TOKEN (its age is unknown)")
    else:
        _echo("refresh token: none (run `retention auth login`)")
        return
    if not check:
        return
    # A refresh may rotate the token: under the lock, a run in flight keeps the token it holds.
    with acquire(settings.state_dir, command="retention auth status --check"):
        manager = token_manager_from_settings(settings, on_secret=register_secret)
        principal = asyncio.run(_check(manager))
    _echo(f"token endpoint: accepted; access token for {principal or 'an unnamed principal'}")


async def _check(manager: TokenManager) -> str | None:
    try:
        await manager.refresh()
        return manager.principal
    finally:
        await manager.aclose()


def _echo(text: str, *, err: bool = False) -> None:
    """A line of prose wrapped to the width in force."""
    width = output_width(sys.stderr if err else sys.stdout)
    click.echo("\n".join(wrap(text, width, indent="  ")), err=err)


def _settings() -> Settings:
    settings = load_settings()
    register_settings_secrets(settings)
    return settings


def _days(span: timedelta) -> str:
    days = span.total_seconds() / 86_400
    return f"{days:.1f} days" if days < 10 else f"{days:.0f} days"
