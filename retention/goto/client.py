"""The async GoTo Meeting client: rate-limited, retried, authenticated calls returning models."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import httpx
import structlog
from httpx_aiohttp import AiohttpTransport
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type

from retention import failpoints
from retention.goto.auth import TokenManager
from retention.goto.errors import (
    ApiError,
    AuthError,
    MalformedResponse,
    NotFound,
    RateLimited,
)
from retention.goto.models import (
    ApiModel,
    Attendee,
    Group,
    GroupMeeting,
    HistoricalSession,
    Organizer,
    Parsed,
    parse_items,
)
from retention.goto.pacing import DeadlineStop, RateLimiter, Retryable, RetryWait, parse_retry_after
from retention.goto.stats import RequestStats
from retention.times import format_query_time

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=ApiModel)
# Without a Retry-After, a 429 still pauses every caller for this long: one server window.
_PAUSE_WITHOUT_RETRY_AFTER = 1.0


class GoToClient:
    """One client per run; `async with GoToClient(...) as client:` opens and closes it."""

    def __init__(
        self,
        api_base_url: str,
        auth: TokenManager,
        rate_limit: float,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout: float = 30.0,
        call_deadline: float = 300.0,
        max_attempts: int = 10,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_cap: float = 120.0,
        limiter_margin: float = 0.02,
        max_connections: int = 64,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = api_base_url.rstrip("/")
        self.auth = auth
        self.limiter = RateLimiter(rate_limit, margin=limiter_margin, clock=clock, sleep=sleep)
        if auth.limiter is None:
            auth.limiter = self.limiter
        self.stats = RequestStats()
        self.call_deadline = call_deadline
        self._max_attempts = max_attempts
        self._wait = RetryWait(backoff_initial, backoff_max, retry_after_cap)
        self._retry_after_cap = retry_after_cap
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        # Requests go straight to the transport: the API needs none of httpx.AsyncClient's
        # cookies, redirects or auth flows, which cost a third of a DELETE's CPU. The default
        # transport is aiohttp's pool and parser under httpx's types (half the CPU of
        # httpcore's pool), through the proxy the environment names, if any.
        self._transport = transport or AiohttpTransport(
            limits=httpx.Limits(max_connections=max_connections),
            proxy=environment_proxy(self.base_url),
        )
        self._timeout = httpx.Timeout(timeout).as_dict()

    def __repr__(self) -> str:
        return f"GoToClient({self.base_url!r}, rate_limit={self.limiter.rate})"

    async def __aenter__(self) -> GoToClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._transport.aclose()
        await self.auth.aclose()

    # The API's calls, one method each.

    async def organizers(self) -> Parsed[Organizer]:
        """Every organizer of the account."""
        return await self._list(Organizer, "/organizers")

    async def groups(self) -> Parsed[Group]:
        """Every group of the account."""
        return await self._list(Group, "/groups")

    async def group_organizers(self, group_key: int) -> Parsed[Organizer]:
        """The organizers of one group."""
        return await self._list(Organizer, "/groups/{groupKey}/organizers", groupKey=group_key)

    async def organizer_history(
        self, organizer_key: int, start: datetime, end: datetime
    ) -> Parsed[HistoricalSession]:
        """Sessions of one organizer that started in [start, end]."""
        return await self._list(
            HistoricalSession,
            "/organizers/{organizerKey}/historicalMeetings",
            query=_range(start, end),
            organizerKey=organizer_key,
        )

    async def group_history(
        self, group_key: int, start: datetime, end: datetime
    ) -> Parsed[GroupMeeting]:
        """Meetings of a group's organizers (at most 50) that started in [start, end]."""
        return await self._list(
            GroupMeeting,
            "/groups/{groupKey}/historicalMeetings",
            query=_range(start, end),
            groupKey=group_key,
        )

    async def meeting_history(
        self, meeting_id: int, start: datetime | None = None, end: datetime | None = None
    ) -> Parsed[HistoricalSession]:
        """Sessions of one meeting id (the API defaults to the last 30 days without a range)."""
        query = _range(start, end) if start is not None and end is not None else {}
        return await self._list(
            HistoricalSession,
            "/meetings/{meetingId}/historicalMeetings",
            query=query,
            meetingId=meeting_id,
        )

    async def attendees_by_meeting(self, meeting_id: int) -> Parsed[Attendee]:
        """Attendees of every instance of one meeting."""
        return await self._list(Attendee, "/meetings/{meetingId}/attendees", meetingId=meeting_id)

    async def attendees_by_organizer(
        self, organizer_key: int, start: datetime, end: datetime
    ) -> Parsed[Attendee]:
        """Attendees of one organizer's meetings in [start, end]."""
        return await self._list(
            Attendee,
            "/organizers/{organizerKey}/attendees",
            query=_range(start, end),
            organizerKey=organizer_key,
        )

    async def delete_session(self, organizer_key: int, session_id: int) -> None:
        """Delete a session with its attendee list and recordings; NotFound when it is absent."""
        await self._call(
            "DELETE",
            "/organizers/{organizerKey}/sessions/{sessionId}",
            organizerKey=organizer_key,
            sessionId=session_id,
        )

    async def delete_attendees(self, organizer_key: int, session_id: int) -> None:
        """Delete a session's attendee list; NotFound when the session is absent."""
        await self._call(
            "DELETE",
            "/organizers/{organizerKey}/sessions/{sessionId}/attendees",
            organizerKey=organizer_key,
            sessionId=session_id,
        )

    async def delete_recordings(self, organizer_key: int, session_id: int) -> None:
        """Delete a session's recordings; NotFound when the session is absent."""
        await self._call(
            "DELETE",
            "/organizers/{organizerKey}/sessions/{sessionId}/recordings",
            organizerKey=organizer_key,
            sessionId=session_id,
        )

    # The machinery: one logical call = retried attempts under one deadline.

    async def _list(
        self,
        model: type[M],
        template: str,
        query: dict[str, str] | None = None,
        **keys: int,
    ) -> Parsed[M]:
        path = template.format(**keys)
        response = await self._call("GET", template, query=query, **keys)
        try:
            payload: Any = response.json()
        except ValueError as exc:
            raise MalformedResponse(
                "GET", path, response.status_code, response.text, detail="the body is not JSON"
            ) from exc
        if not isinstance(payload, list):
            raise MalformedResponse(
                "GET",
                path,
                response.status_code,
                response.text,
                detail="expected a JSON array",
            )
        return parse_items(model, payload, f"GET {path}")

    async def _call(
        self, method: str, template: str, query: dict[str, str] | None = None, **keys: int
    ) -> httpx.Response:
        path = template.format(**keys)
        self.stats.calls += 1
        started = self._clock()
        attempt = partial(self._attempt, method, template, path, query or {})
        try:
            async with asyncio.timeout(self.call_deadline):
                try:
                    # Most calls succeed at once: only those that did not pay for tenacity's
                    # bookkeeping (about a tenth of a DELETE's CPU).
                    return await attempt()
                except Retryable as first:
                    return await self._retried(attempt, first, started, (method, template))
        except Retryable as exc:
            raise _final_error(method, path, exc) from exc
        except TimeoutError as exc:
            raise ApiError(
                method,
                path,
                None,
                detail=f"no answer within the call's {self.call_deadline:g} s deadline",
            ) from exc

    async def _retried(
        self,
        attempt: Callable[[], Awaitable[httpx.Response]],
        first: Retryable,
        started: float,
        endpoint: tuple[str, str],
    ) -> httpx.Response:
        """The attempts after a failed first one, under tenacity.

        The first failure is handed to tenacity as attempt 1, so the waits, the stop and the log
        lines are exactly those of a call retried from the start.
        """
        replay = [first]

        async def again() -> httpx.Response:
            if replay:
                raise replay.pop()
            return await attempt()

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Retryable),
            stop=DeadlineStop(self.call_deadline, self._max_attempts, started, self._clock),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._note_retry(*endpoint),
            reraise=True,
        )
        return await retrying(again)

    def _note_retry(self, method: str, template: str) -> Callable[[RetryCallState], None]:
        def note(state: RetryCallState) -> None:
            self.stats.retries += 1
            self.stats.retried[template] += 1
            failure = state.outcome.exception() if state.outcome is not None else None
            log.warning(
                "retrying API call",
                method=method,
                endpoint=template,
                attempt=state.attempt_number,
                failure=str(failure),
                wait=round(state.upcoming_sleep, 3),
            )

        return note

    async def _attempt(
        self, method: str, template: str, path: str, query: dict[str, str]
    ) -> httpx.Response:
        response, token = await self._send(method, template, path, query)
        if _token_refused(response):
            # Expired or revoked: refresh (once for all concurrent callers) and try again.
            self.auth.invalidate(token)
            self.stats.token_retries += 1
            response, _ = await self._send(method, template, path, query)
        return self._judge(method, path, response)

    async def _send(
        self, method: str, template: str, path: str, query: dict[str, str]
    ) -> tuple[httpx.Response, str]:
        token = await self.auth.access_token()
        await self.limiter.acquire()
        while not self.auth.is_fresh(token):
            # It expired while this call waited for its turn. The turn is given up too: the
            # limiter counted it as sent, and a refresh in between would make a burst of it.
            token = await self.auth.access_token()
            await self.limiter.acquire()
        try:
            request = httpx.Request(
                method,
                self.base_url + path,
                params=query,
                headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
                extensions={"timeout": self._timeout},
            )
            response = await self._transport.handle_async_request(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except (
            httpx.TimeoutException,
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            aiohttp.ClientError,  # what the adapter leaves unmapped, such as a malformed answer
        ) as exc:
            self.stats.record_transport_error(method, template, type(exc).__name__)
            raise Retryable(None, "", type(exc).__name__) from exc
        if method == "DELETE":
            failpoints.hit("after_send")
        self.stats.record_response(method, template, response.status_code)
        return response, token

    def _judge(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())
            pause = _PAUSE_WITHOUT_RETRY_AFTER if retry_after is None else retry_after
            self.limiter.slow_down(min(pause, self._retry_after_cap))
            raise Retryable(status, response.text, "HTTP 429", retry_after)
        if status >= 500:
            raise Retryable(status, response.text, f"HTTP {status}")
        if status == 404:
            raise NotFound(method, path, status, response.text)
        if status in (401, 403):
            raise AuthError(
                method,
                path,
                status,
                response.text,
                hint="check that the token's user has the admin role and the Admin Center scope;"
                " `retention auth status` shows who the token belongs to",
            )
        if not response.is_success:
            raise ApiError(method, path, status, response.text)
        self.limiter.succeeded()
        return response


def environment_proxy(url: str) -> httpx.Proxy | None:
    """The proxy HTTPS_PROXY, HTTP_PROXY or ALL_PROXY name for `url`, unless NO_PROXY exempts it.

    Read once here rather than by aiohttp's `trust_env`, which also looks for a .netrc file on
    a worker thread before every request.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    return httpx.Proxy(proxy) if proxy else None


def _token_refused(response: httpx.Response) -> bool:
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("int_err_code") == "InvalidToken"


def _final_error(method: str, path: str, failure: Retryable) -> ApiError:
    detail = f"{failure.kind}, still failing after retries"
    if failure.status == 429:
        return RateLimited(method, path, 429, failure.body, detail=detail)
    return ApiError(method, path, failure.status, failure.body, detail=detail)


def _range(start: datetime, end: datetime) -> dict[str, str]:
    return {"startDate": format_query_time(start), "endDate": format_query_time(end)}
