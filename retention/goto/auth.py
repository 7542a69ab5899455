"""OAuth for the API: refresh-token grant, single-flight refresh, rotation persisted before use.

The access token is kept in the token store with its expiry, so a run uses the one an earlier
run obtained until it is due for a refresh: a token is refreshed when none is kept, when it is
within a margin of its expiry, or when the API answers 401 to it, not on every run (every
refresh rotates GoTo's refresh token).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import structlog
from pydantic import SecretStr

from retention import failpoints
from retention.goto.errors import ApiError, AuthError, Stopped, TokenStoreError
from retention.goto.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Answer,
    Unanswered,
    make_http_client,
    send,
)
from retention.goto.pacing import (
    RateLimiter,
    Retryable,
    RetryWait,
    Sleep,
    StopRequested,
    interruptible,
    parse_retry_after,
    retrying,
)
from retention.goto.stats import ClockSkew
from retention.goto.tokenstore import StoredAccess, StoredToken, TokenStore

log = structlog.get_logger(__name__)

_TOKEN_ATTEMPTS = 4
_TOKEN_DEADLINE = 120.0
# Refresh this long before expiry (a quarter of the lifetime, at most a minute), so that a token
# does not expire between the check and the request.
_MAX_EARLY_REFRESH = 60.0
# An access token lives 60 minutes (GoTo's guides); `expires_in` is believed between a second
# and a day, and clamped to them otherwise: a short lifetime is never stretched (a token used
# past it would only be refused), an absurd one never kept.
TOKEN_LIFETIME = 3600.0
MIN_TOKEN_LIFETIME = 1.0
MAX_TOKEN_LIFETIME = 86_400.0
_EXPIRY_MARGIN = 5.0
# An OAuth error code (RFC 6749 5.2); anything else the endpoint says stays out of messages,
# since an endpoint may echo the request, refresh token included.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


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
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Sleep = asyncio.sleep,
        stop: asyncio.Event | None = None,
        on_secret: Callable[[str], None] = lambda _secret: None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self.store = store
        self._initial_refresh = refresh_token
        self._clock = clock
        self._wall_clock = wall_clock
        self._on_secret = on_secret
        # The run's one HTTP client: the API client sends through it too, and it is closed here.
        self.http = http if http is not None else make_http_client(transport)
        self.stop = stop
        # The API client's limiter, once one uses this manager: a gateway may count token
        # requests against the same limit.
        self.limiter: RateLimiter | None = None
        self.skew = ClockSkew()
        self.max_response_bytes = max_response_bytes
        self._pause = interruptible(sleep, stop)
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._refresh_at = 0.0
        self._expires_at = 0.0
        self._failure: AuthError | None = None
        # The kept access token is tried once, by the first caller: after a 401 it is not again.
        self._kept_tried = False
        self.refreshes = 0
        self.principal: str | None = None
        self.account_key: str | None = None
        on_secret(client_secret.get_secret_value())
        if refresh_token is not None:
            on_secret(refresh_token.get_secret_value())

    def __repr__(self) -> str:
        return f"TokenManager(token_url={self.token_url!r}, client_id={self._client_id!r})"

    async def aclose(self) -> None:
        """Close the run's HTTP connections (the token endpoint's and the API's)."""
        await self.http.aclose()

    async def access_token(self) -> str:
        """A token valid for a while yet; refreshes (once, whoever asks) when it is not."""
        token = self._access
        if token is not None and self._clock() < self._refresh_at:
            return token
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            if self._access is None and not self._kept_tried:
                self._kept_tried = True
                self._adopt(self.store.load_access())
            if self._access is None or self._clock() >= self._refresh_at:
                await self._refresh()
            assert self._access is not None
            return self._access

    async def refresh(self) -> None:
        """Ask the token endpoint now, whatever is kept (`auth status --check`)."""
        async with self._lock:
            if self._failure is not None:
                raise self._failure
            self._kept_tried = True
            await self._refresh()

    def _adopt(self, kept: StoredAccess | None) -> None:
        """Use the access token an earlier run kept, if it is this client's and not yet due."""
        if kept is None or (kept.token_url, kept.client_id) != (self.token_url, self._client_id):
            return
        self._on_secret(kept.access_token)
        lifetime = (kept.expires_at - kept.obtained_at).total_seconds()
        left = (kept.expires_at - self._wall_clock()).total_seconds()
        if lifetime <= 0 or left - min(_MAX_EARLY_REFRESH, lifetime / 4) <= 0:
            return
        self._set_access(kept.access_token, lifetime, left)
        self.principal = kept.principal
        self.account_key = kept.account_key
        log.info("access token reused", expires_in=round(left))

    def is_valid(self, token: str) -> bool:
        """Whether `token` is the one in force and not expired (it may be due for a refresh)."""
        return token == self._access and self._clock() < self._expires_at

    def invalidate(self, token: str) -> None:
        """The API refused `token`: the next caller refreshes, unless someone already did."""
        if self._access == token:
            self._access = None
            self.store.forget_access()

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
        self._set_access(access, expires_in, expires_in)
        self.refreshes += 1
        self.principal = principal or self.principal
        self.account_key = account_key or self.account_key
        self._keep(access, expires_in)
        log.info("access token obtained", rotated=rotated, expires_in=expires_in)
        return TokenInfo(principal, account_key, expires_in, rotated)

    def _set_access(self, access: str, lifetime: float, left: float) -> None:
        """`access` is in force: `lifetime` seconds long in all, `left` of them remaining."""
        self._access = access
        # Counted from its arrival, so a little before the server's own reckoning.
        self._expires_at = self._clock() + left - min(_EXPIRY_MARGIN, lifetime / 10)
        # A quarter of a short lifetime, at most a minute of a long one: a token must not expire
        # between its rate-limit turn and the server reading it, even on a loaded host.
        self._refresh_at = self._clock() + left - min(_MAX_EARLY_REFRESH, lifetime / 4)

    def _keep(self, access: str, expires_in: float) -> None:
        """Keep the new access token for later runs; failing that, they refresh as before."""
        now = self._wall_clock()
        kept = StoredAccess(
            access_token=access,
            obtained_at=now,
            expires_at=now + timedelta(seconds=expires_in),
            token_url=self.token_url,
            client_id=self._client_id,
            principal=self.principal,
            account_key=self.account_key,
        )
        try:
            self.store.save_access(kept)
        except OSError as exc:
            log.warning("access token not kept for the next run", error=exc.strerror or str(exc))

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
        credential = httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value())
        retrier = retrying(
            attempts=_TOKEN_ATTEMPTS,
            deadline=_TOKEN_DEADLINE,
            clock=self._clock,
            wait=RetryWait(0.5, 8.0, 30.0),
            sleep=self._pause,
        )
        try:
            answer: Answer = await retrier(self._token_attempt, form, credential)
        except Retryable as exc:
            detail = f"{exc.kind}, still failing after retries"
            raise ApiError("POST", self.token_url, exc.status, detail=detail) from None
        except StopRequested:
            raise Stopped("POST", self.token_url) from None
        return self._token_body(answer)

    async def _token_attempt(self, form: dict[str, str], credential: httpx.Auth) -> Answer:
        if self.stop is not None and self.stop.is_set():
            raise StopRequested
        if self.limiter is not None:
            await self.limiter.acquire(urgent=True)
        request = self.http.build_request(
            "POST", self.token_url, data=form, headers={"Accept": "application/json"}
        )
        try:
            answer = await send(
                self.http,
                request,
                endpoint=self.token_url,
                max_bytes=self.max_response_bytes,
                auth=credential,
            )
        except Unanswered as exc:
            raise Retryable(None, "", exc.kind) from None
        self.skew.observe(answer.server_time(), self._wall_clock())
        if answer.status == 429 or answer.status >= 500:
            after = parse_retry_after(answer.headers.get("Retry-After"), self._wall_clock())
            # The body is left out: a token endpoint may echo the request into it.
            raise Retryable(answer.status, "", f"HTTP {answer.status}", after)
        return answer

    def _token_body(self, answer: Answer) -> dict[str, Any]:
        try:
            body = answer.json("POST", self.token_url)
        except ApiError:
            body = None
        if 200 <= answer.status < 300 and isinstance(body, dict):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        reason = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
        raise AuthError(
            "POST",
            self.token_url,
            answer.status,
            detail=f"the token endpoint refused the grant ({reason or 'no reason given'})",
            hint="the refresh token may have expired or been revoked: run `retention auth login`"
            " and check RETENTION_CLIENT_ID / RETENTION_CLIENT_SECRET",
        )


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _expires_in(value: object) -> float:
    """`expires_in` as seconds an access token is used for, always within the bounds.

    Absent, not a number, or NaN: the documented lifetime (60 minutes). A number beyond the
    bounds (zero or negative, 1e300, infinity, an integer of 400 digits) is clamped to them,
    and logged: no lifetime the endpoint sends can overflow a date or keep a token for ever.
    """
    seconds: float | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = float(max(min(value, 10**12), -(10**12)))
    elif isinstance(value, float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            seconds = float(value)
    if seconds is None or math.isnan(seconds):
        if value is not None:
            log.warning("token answer's expires_in is not a number", used=TOKEN_LIFETIME)
        return TOKEN_LIFETIME
    used = min(max(seconds, MIN_TOKEN_LIFETIME), MAX_TOKEN_LIFETIME)
    if used != seconds:
        log.warning("token answer's expires_in is out of bounds", given=str(value)[:40], used=used)
    return used
