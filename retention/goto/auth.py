"""OAuth for the API: refresh-token grant, single-flight refresh, rotation persisted before use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from retention import failpoints
from retention.goto.errors import ApiError, AuthError, TokenStoreError
from retention.goto.pacing import RateLimiter
from retention.goto.tokenstore import StoredToken, TokenStore

log = structlog.get_logger(__name__)

_TOKEN_ATTEMPTS = 4
_TOKEN_BACKOFF = 0.5
# Refresh this long before expiry (a tenth of the lifetime, at most a minute), so that a token
# does not expire between the check and the request.
_MAX_EARLY_REFRESH = 60.0


@dataclass(frozen=True)
class TokenInfo:
    """What a token response said, secrets left out."""

    principal: str | None
    account_key: str | None
    expires_in: float
    rotated: bool


class TokenManager:
    """Hands out a valid access token, refreshing once for any number of concurrent callers."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        store: TokenStore,
        refresh_token: SecretStr | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_secret: Callable[[str], None] = lambda _secret: None,
        timeout: float = 30.0,
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.store = store
        self._initial_refresh = refresh_token
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_secret = on_secret
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._refresh_at = 0.0
        self._failure: AuthError | None = None
        self.limiter: RateLimiter | None = None
        self.refreshes = 0
        self.principal: str | None = None
        on_secret(client_secret.get_secret_value())
        if refresh_token is not None:
            on_secret(refresh_token.get_secret_value())

    def __repr__(self) -> str:
        return f"TokenManager(token_url={self.token_url!r}, client_id={self._client_id!r})"

    async def aclose(self) -> None:
        """Close the HTTP connections to the token endpoint."""
        await self._http.aclose()

    async def access_token(self) -> str:
        """A token valid for a while yet; refreshes (once, whoever asks) when it is not."""
        token = self._access
        if token is not None and self._clock() < self._refresh_at:
            return token
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._access is None or self._clock() >= self._refresh_at:
                await self._refresh()
            assert self._access is not None
            return self._access

    def is_fresh(self, token: str) -> bool:
        """Whether `token` is the one in force and not due for a refresh yet."""
        return token == self._access and self._clock() < self._refresh_at

    def invalidate(self, token: str) -> None:
        """The API refused `token`: the next caller refreshes, unless someone already did."""
        if self._access == token:
            self._access = None

    def current_refresh_token(self) -> str | None:
        """The refresh token in force: the stored (rotated) one, else the one from settings."""
        stored = self.store.load()
        if stored is not None:
            self._on_secret(stored.refresh_token)
            return stored.refresh_token
        if self._initial_refresh is not None:
            return self._initial_refresh.get_secret_value()
        return None

    async def _refresh(self) -> None:
        refresh_token = self.current_refresh_token()
        if refresh_token is None:
            raise AuthError(
                "POST",
                self.token_url,
                None,
                detail="no refresh token: none stored and RETENTION_REFRESH_TOKEN is unset",
                hint="run `retention auth login`, or set RETENTION_REFRESH_TOKEN",
            )
        try:
            body = await self._token_request(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}
            )
        except AuthError as exc:
            # A refused grant stays refused: every later caller gets this answer without
            # asking the token endpoint again.
            self._failure = exc
            raise
        self._accept(body, previous_refresh=refresh_token)

    async def exchange_code(self, code: str, redirect_uri: str) -> TokenInfo:
        """The authorization-code grant of `auth login`: stores the refresh token it yields."""
        self._on_secret(code)
        body = await self._token_request(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        )
        async with self._lock:
            return self._accept(body, previous_refresh=None)

    def _accept(self, body: dict[str, Any], previous_refresh: str | None) -> TokenInfo:
        access = body.get("access_token")
        if not isinstance(access, str) or not access:
            raise AuthError("POST", self.token_url, 200, detail="no access_token in the answer")
        self._on_secret(access)
        principal = _text(body.get("principal") or body.get("email"))
        account_key = _text(body.get("account_key"))
        new_refresh = body.get("refresh_token")
        rotated = (
            isinstance(new_refresh, str) and bool(new_refresh) and new_refresh != previous_refresh
        )
        if rotated:
            assert isinstance(new_refresh, str)
            self._on_secret(new_refresh)
            failpoints.hit("before_token_persist")
            self._persist(StoredToken(new_refresh, self._wall_clock(), principal, account_key))
            failpoints.hit("after_token_persist")
        elif previous_refresh is None:
            raise AuthError("POST", self.token_url, 200, detail="no refresh_token in the answer")
        expires_in = _expires_in(body.get("expires_in"))
        self._access = access
        # A quarter of a short lifetime, at most a minute of a long one: a token must not expire
        # between its rate-limit turn and the server reading it, even on a loaded host.
        self._refresh_at = self._clock() + expires_in - min(_MAX_EARLY_REFRESH, expires_in / 4)
        self.refreshes += 1
        self.principal = principal or self.principal
        log.info("access token obtained", rotated=rotated, expires_in=expires_in)
        return TokenInfo(principal, account_key, expires_in, rotated)

    def _persist(self, token: StoredToken) -> None:
        try:
            self.store.save(token)
        except OSError as exc:
            # The old refresh token is dead now; sending anything more would only hide that.
            self._failure = TokenStoreError(
                "POST",
                self.token_url,
                200,
                detail=f"the rotated refresh token could not be saved to {self.store.path}: "
                f"{exc.strerror or exc}",
                hint="make the state directory writable, then run `retention auth login`",
            )
            raise self._failure from exc

    async def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        auth = httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value())
        for attempt in range(1, _TOKEN_ATTEMPTS + 1):
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                response = await self._http.post(self.token_url, data=form, auth=auth)
            except httpx.TransportError as exc:
                if attempt == _TOKEN_ATTEMPTS:
                    raise ApiError("POST", self.token_url, None, detail=type(exc).__name__) from exc
            else:
                if response.status_code < 500 and response.status_code != 429:
                    return self._token_body(response)
                if attempt == _TOKEN_ATTEMPTS:
                    raise ApiError("POST", self.token_url, response.status_code, response.text)
            await asyncio.sleep(_TOKEN_BACKOFF * 2 ** (attempt - 1))
        raise AssertionError("unreachable: the loop returns or raises")

    def _token_body(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        raise AuthError(
            "POST",
            self.token_url,
            response.status_code,
            detail=f"the token endpoint refused the grant ({error or 'no reason given'})",
            hint="the refresh token may have expired or been revoked: run `retention auth login`"
            " and check RETENTION_CLIENT_ID / RETENTION_CLIENT_SECRET",
        )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _expires_in(value: object) -> float:
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 3600.0
    return seconds if seconds > 0 else 3600.0
