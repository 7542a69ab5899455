"""Building the token manager and the client from settings, for the commands and the daemon."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from retention.errors import SettingsError
from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.tokenstore import TokenStore
from retention.settings import Settings


def token_manager_from_settings(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_secret: Callable[[str], None] = lambda _secret: None,
) -> TokenManager:
    """The token manager for RETENTION_TOKEN_URL, RETENTION_CLIENT_ID/SECRET and the state dir."""
    if not settings.client_id or settings.client_secret is None:
        raise SettingsError(
            "RETENTION_CLIENT_ID and RETENTION_CLIENT_SECRET must both be set to call the API",
            hint="set them in the environment, the TOML file, or $CREDENTIALS_DIRECTORY",
        )
    return TokenManager(
        settings.token_url,
        settings.client_id,
        settings.client_secret,
        TokenStore.in_state_dir(settings.state_dir),
        settings.refresh_token,
        transport=transport,
        on_secret=on_secret,
    )


def client_from_settings(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_secret: Callable[[str], None] = lambda _secret: None,
) -> GoToClient:
    """A client for RETENTION_API_BASE_URL at RETENTION_RATE_LIMIT requests per second."""
    auth = token_manager_from_settings(settings, transport=transport, on_secret=on_secret)
    return GoToClient(
        settings.api_base_url,
        auth,
        settings.rate_limit,
        transport,
        call_deadline=settings.call_deadline,
        max_connections=settings.concurrency,
    )
