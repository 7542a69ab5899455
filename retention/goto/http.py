"""The one HTTP stack of API and token calls: an httpx.AsyncClient, capped reads, named failures."""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from retention.goto.errors import ApiError, MalformedResponse, ResponseTooLarge, TlsError

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
CA_BUNDLE_HINT = "set RETENTION_CA_BUNDLE for a corporate CA"
# The seam through which tests (and the sandbox's ASGI app) answer calls; only goto/ knows httpx.
Transport = httpx.AsyncBaseTransport


def make_http_client(
    transport: Transport | None = None,
    *,
    ca_bundle: Path | None = None,
    max_connections: int = 64,
    timeout: float = 30.0,
) -> httpx.AsyncClient:
    """The client every call of a run goes through: proxies from the environment, TLS verified.

    `transport` is the seam for tests (the sandbox's ASGI app); `ca_bundle` replaces the
    default CA certificates with a corporate CA's. No redirects are followed: the API answers
    without them, and a redirect must not carry the bearer token elsewhere.
    """
    verify: ssl.SSLContext | bool = True
    if ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(ca_bundle))
    return httpx.AsyncClient(
        transport=transport,
        trust_env=True,
        verify=verify,
        timeout=timeout,
        # Every connection may stay open: httpx's default keeps 20, so beyond 20 calls in
        # flight each answer closed a connection and the next call opened one (CPU, and
        # late arrivals that the server counted into the next second: 429s).
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        follow_redirects=False,
    )


class Unanswered(Exception):
    """No answer arrived (timeout, refused or dropped connection); another attempt may get one."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    """An HTTP answer read whole (within the size cap)."""

    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def text(self) -> str:
        """The body as text, undecodable bytes replaced."""
        return self.body.decode("utf-8", errors="replace")

    def server_time(self) -> datetime | None:
        """The server's clock from the `Date` header, or None if absent or unreadable."""
        value = self.headers.get("Date")
        if not value:
            return None
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return when if when.tzinfo is not None else None

    def json(self, method: str, path: str) -> Any:
        """The body as JSON; MalformedResponse when it is not JSON or is nested absurdly deep."""
        try:
            return json.loads(self.body)
        except RecursionError:
            detail = "the JSON body is nested too deeply"
        except ValueError:
            detail = "the body is not JSON"
        raise MalformedResponse(method, path, self.status, self.text, detail=detail)


async def send(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    endpoint: str,
    max_bytes: int,
    auth: httpx.Auth | None = None,
) -> Answer:
    """Send `request` (built beforehand, so little work is left between a turn and the wire),
    its body read streaming and refused beyond `max_bytes`.

    Raises Unanswered for what a retry may cure, TlsError for a certificate or handshake
    failure, ResponseTooLarge over the cap. `endpoint` names the call in errors; nothing of the
    request (its body, credentials or token) goes into them.
    """
    method = request.method
    try:
        response = await http.send(request, stream=True, auth=auth)
        try:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ResponseTooLarge(method, endpoint, response.status_code, max_bytes)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ResponseTooLarge(method, endpoint, response.status_code, max_bytes)
                chunks.append(chunk)
            return Answer(response.status_code, response.headers, b"".join(chunks))
        finally:
            await response.aclose()
    except httpx.ConnectError as exc:
        tls = _tls_failure(exc)
        if tls is None:
            raise Unanswered(type(exc).__name__) from None
        host = request.url.host
        raise TlsError(method, endpoint, detail=f"{tls} for {host}: {_reason(exc)}") from None
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        raise Unanswered(type(exc).__name__) from None
    except httpx.DecodingError as exc:
        raise ApiError(method, endpoint, None, detail="the answer could not be decoded") from exc


def _tls_failure(exc: BaseException) -> str | None:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "TLS certificate verification failed"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        cause = cause.__cause__ or cause.__context__
    return None


def _reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_message:
            return f"{cause.verify_message}; {CA_BUNDLE_HINT}"
        if isinstance(cause, ssl.SSLError):
            return f"{cause.reason or cause}; {CA_BUNDLE_HINT}"
        cause = cause.__cause__ or cause.__context__
    return CA_BUNDLE_HINT
