"""Building the token manager and the client from settings, for the commands and the daemon."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from pathlib import Path

import httpx

from retention.errors import SettingsError
from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.http import make_http_client
from retention.goto.tokenstore import TokenStore
from retention.settings import Settings


def token_manager_from_settings(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    stop: asyncio.Event | None = None,
    on_secret: Callable[[str], None] = lambda _secret: None,
) -> TokenManager:
    """The token manager for RETENTION_TOKEN_URL, RETENTION_CLIENT_ID/SECRET and the state dir.

    It owns the run's HTTP client (TLS verified, RETENTION_CA_BUNDLE if set, proxies from the
    environment), which the API client shares.
    """
    if not settings.client_id or settings.client_secret is None:
        raise SettingsError(
            "RETENTION_CLIENT_ID and RETENTION_CLIENT_SECRET must both be set to call the API",
            hint="set them in the environment, the TOML file, or $CREDENTIALS_DIRECTORY",
        )
    require_secure_url("RETENTION_TOKEN_URL", settings.token_url)
    require_secure_url("RETENTION_API_BASE_URL", settings.api_base_url)
    ca_bundle = Path(settings.ca_bundle) if settings.ca_bundle else None
    if ca_bundle is not None and not ca_bundle.is_file():
        raise SettingsError(
            f"RETENTION_CA_BUNDLE names {ca_bundle}, which is not a readable file",
            hint="point it at a PEM file of the CA certificates that sign the API's certificate",
        )
    try:
        http = make_http_client(
            transport, ca_bundle=ca_bundle, max_connections=settings.concurrency
        )
    except OSError as exc:  # ssl.SSLError included: the file is not a PEM bundle
        raise SettingsError(
            f"RETENTION_CA_BUNDLE {settings.ca_bundle} could not be loaded: {exc}",
            hint="it must be a PEM file of CA certificates",
        ) from None
    return TokenManager(
        settings.token_url,
        settings.client_id,
        settings.client_secret,
        TokenStore.in_state_dir(settings.state_dir),
        settings.refresh_token,
        http=http,
        stop=stop,
        on_secret=on_secret,
        max_response_bytes=settings.max_response_bytes,
    )


def client_from_settings(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    stop: asyncio.Event | None = None,
    on_secret: Callable[[str], None] = lambda _secret: None,
) -> GoToClient:
    """A client for RETENTION_API_BASE_URL at RETENTION_RATE_LIMIT requests per second.

    `stop`, once set, ends retries and keeps new attempts off the wire (the run's stop:
    `service/context.py`).
    """
    auth = token_manager_from_settings(
        settings, transport=transport, stop=stop, on_secret=on_secret
    )
    return GoToClient(
        settings.api_base_url,
        auth,
        settings.rate_limit,
        call_deadline=settings.call_deadline,
        max_response_bytes=settings.max_response_bytes,
        stop=stop,
    )


def require_secure_url(name: str, url: str) -> None:
    """Refuse a URL that would send credentials in the clear: https, or http to loopback only."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https":
        return
    if parsed.scheme == "http" and _is_loopback(parsed.host):
        return
    raise SettingsError(
        f"{name} must be an https:// URL (got {parsed.scheme}://{parsed.host}): credentials and"
        " tokens would cross the network in the clear",
        hint="use https://; plain http:// is accepted only for a loopback host such as 127.0.0.1",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
