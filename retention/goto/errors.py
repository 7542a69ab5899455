"""The errors the GoTo client raises, translated at the boundary from httpx and JSON failures.

RuntimeFailure (retention.errors, exit 1)
├── ApiError                 method, path, status (None: no answer), a short body excerpt
│   ├── NotFound             404: the organizer, meeting or session does not exist (any more)
│   ├── AuthError            401/403 after one refresh, or the token endpoint refused the grant
│   │   └── TokenStoreError  a rotated refresh token could not be saved: nothing further is sent
│   ├── RateLimited          429 answers outlasted the call's retries or deadline
│   ├── MalformedResponse    the body is not the JSON shape the reference documents
│   ├── ResponseTooLarge     the answer exceeds RETENTION_MAX_RESPONSE_BYTES (never read whole)
│   └── TlsError             the server's certificate failed verification, or the handshake did
└── Stopped                  a stop was asked for: no call is retried, no attempt started

Messages name the method and endpoint, never the request: no body, credential or token.
"""

from __future__ import annotations

from retention.errors import RuntimeFailure

_EXCERPT_CHARS = 200


def excerpt(body: str) -> str:
    """A short, single-line excerpt of a response body for an error message."""
    flat = " ".join(body.split())
    return flat if len(flat) <= _EXCERPT_CHARS else flat[:_EXCERPT_CHARS] + "…"


class ApiError(RuntimeFailure):
    """A call to the GoTo API failed; names the call so that an operator can reproduce it."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        body: str = "",
        *,
        detail: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body_excerpt = excerpt(body)
        answer = f"HTTP {status}" if status is not None else "no answer"
        message = f"GoTo API {method} {path} failed: {detail or answer}"
        if self.body_excerpt:
            message += f" ({self.body_excerpt})"
        super().__init__(message, hint=hint)


class NotFound(ApiError):
    """404: what the call named does not exist, or no longer exists."""


class AuthError(ApiError):
    """The API or the token endpoint refused our credentials."""


class TokenStoreError(AuthError):
    """A refresh token could not be persisted; the new access token is never used."""


class RateLimited(ApiError):
    """The API kept answering 429 until the call's retries or deadline ran out."""


class MalformedResponse(ApiError):
    """The API answered 2xx with a body that is not the documented JSON shape."""


class ResponseTooLarge(ApiError):
    """The answer is larger than the configured cap; reading stopped there."""

    def __init__(self, method: str, path: str, status: int | None, limit: int) -> None:
        super().__init__(
            method,
            path,
            status,
            detail=f"the answer exceeds {limit} bytes (RETENTION_MAX_RESPONSE_BYTES)",
            hint="raise RETENTION_MAX_RESPONSE_BYTES if the account's answers are this large",
        )


class TlsError(ApiError):
    """The TLS connection could not be verified: a retry would fail the same way."""

    def __init__(self, method: str, path: str, *, detail: str) -> None:
        super().__init__(method, path, None, detail=detail)


class Stopped(RuntimeFailure):
    """The run is stopping: the call was not (re)tried. Not an ApiError: the API said nothing.

    `sent`: an attempt of the call had gone out before the stop (it was not tried again), so
    what it asked for may have been done.
    """

    def __init__(self, method: str, path: str, *, sent: bool = False) -> None:
        self.method = method
        self.path = path
        self.sent = sent
        done = "not tried again after an attempt went out" if sent else "not sent"
        super().__init__(f"GoTo API {method} {path} {done}: the run is stopping")
