"""The OAuth 2.0 side: `/oauth/token` (refresh_token, authorization_code) and `/oauth/authorize`."""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from retention.sandbox.account import ADMIN_SCOPE, Account
from retention.sandbox.faults import Controls

INVALID_TOKEN = {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}


@dataclass
class TokenStore:
    """Live access tokens (with expiry), refresh tokens and one-time authorization codes."""

    account: Account
    controls: Controls
    rotate: bool
    clock: Callable[[], float]

    def __post_init__(self) -> None:
        self.access: dict[str, float] = {}
        self.refresh: set[str] = {self.account.oauth.refresh_token}
        self.codes: dict[str, str] = {}

    def issue_access_token(self) -> str:
        """A new access token that lives `token_ttl` seconds from now."""
        token = secrets.token_urlsafe(24)
        self.access[token] = self.clock() + self.controls.token_ttl
        return token

    def is_valid(self, token: str) -> bool:
        expires = self.access.get(token)
        return expires is not None and self.clock() < expires

    def revoke_all(self) -> None:
        """Expire every access token at once (refresh tokens stay valid)."""
        self.access.clear()

    def new_code(self, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = redirect_uri
        return code

    def grant(self, refresh_token: str | None) -> dict[str, Any]:
        """The token response; `refresh_token` is the one presented (None: a code was used)."""
        if refresh_token is None or self.rotate:
            self.refresh.discard(refresh_token or "")
            refresh_token = secrets.token_urlsafe(24)
            self.refresh.add(refresh_token)
        admin = self.account.admin
        return {
            "access_token": self.issue_access_token(),
            "token_type": "Bearer",
            "expires_in": self.controls.token_ttl,
            "refresh_token": refresh_token,
            "scope": ADMIN_SCOPE,
            "principal": admin.email,
            "organizer_key": str(admin.organizer_key),
            "account_key": self.account.account_key,
            "email": admin.email,
            "firstName": admin.first_name,
            "lastName": admin.last_name,
        }


def _error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


def _client_ok(request: Request, account: Account) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    expected = account.oauth
    return secrets.compare_digest(client_id, expected.client_id) and secrets.compare_digest(
        secret, expected.client_secret
    )


async def token_endpoint(request: Request) -> Response:
    """POST /oauth/token with HTTP Basic client auth and a form-encoded body."""
    store: TokenStore = request.app.state.tokens
    if not _client_ok(request, store.account):
        response = _error(401, "invalid_client", "Bad client credentials")
        response.headers["WWW-Authenticate"] = 'Basic realm="oauth"'
        return response
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    grant_type = form.get("grant_type")
    if grant_type == "refresh_token":
        presented = form.get("refresh_token", "")
        if presented not in store.refresh:
            return _error(400, "invalid_grant", "Refresh token is invalid or expired")
        return JSONResponse(store.grant(presented))
    if grant_type == "authorization_code":
        code = form.get("code", "")
        redirect_uri = store.codes.pop(code, None)
        if redirect_uri is None:
            return _error(400, "invalid_grant", "Authorization code is invalid or used")
        if form.get("redirect_uri", redirect_uri) != redirect_uri:
            return _error(400, "invalid_grant", "redirect_uri does not match the authorization")
        return JSONResponse(store.grant(None))
    if grant_type is None:
        return _error(400, "invalid_request", "grant_type is required")
    return _error(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported")


async def authorize_endpoint(request: Request) -> Response:
    """GET /oauth/authorize: approves at once and redirects back with `code` and `state`."""
    store: TokenStore = request.app.state.tokens
    params = request.query_params
    if params.get("client_id") != store.account.oauth.client_id:
        return _error(400, "invalid_client", "Unknown client_id")
    if params.get("response_type", "code") != "code":
        return _error(400, "unsupported_response_type", "Only response_type=code is supported")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or not urlsplit(redirect_uri).scheme:
        return _error(400, "invalid_request", "redirect_uri is required and must be absolute")
    answer = {"code": store.new_code(redirect_uri)}
    if "state" in params:
        answer["state"] = params["state"]
    parts = urlsplit(redirect_uri)
    query = "&".join(filter(None, (parts.query, urlencode(answer))))
    return RedirectResponse(urlunsplit(parts._replace(query=query)), status_code=302)
