"""The errors the GoTo client raises, translated at the boundary from httpx and JSON failures.

RuntimeFailure (retention.errors, exit 1)
└── ApiError                 method, path, status (None: no answer), a short body excerpt
    ├── NotFound             404: the organizer, meeting or session does not exist (any more)
    ├── AuthError            401/403 after one refresh, or the token endpoint refused the grant
    │   └── TokenStoreError  a rotated refresh token could not be saved: nothing further is sent
    ├── RateLimited          429 answers outlasted the call's retries or deadline
    └── MalformedResponse    the body is not the JSON shape the reference documents
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
