"""The async GoTo Meeting client: rate-limited, retried, authenticated calls returning models."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypeVar

import structlog
from tenacity import RetryCallState

from retention import failpoints
from retention.goto.auth import TokenManager
from retention.goto.errors import (
    ApiError,
    AuthError,
    MalformedResponse,
    NotFound,
    RateLimited,
    Stopped,
)
from retention.goto.http import DEFAULT_MAX_RESPONSE_BYTES, Answer, Unanswered, send
from retention.goto.models import (
    ApiModel,
    Group,
    GroupMeeting,
    HistoricalSession,
    Organizer,
    Parsed,
    parse_items,
)
from retention.goto.pacing import (
    RateLimiter,
    Retryable,
    RetryWait,
    StopRequested,
    interruptible,
    parse_retry_after,
    retrying,
)
from retention.goto.stats import RequestStats
from retention.times import format_query_time

log = structlog.get_logger(__name__)
M = TypeVar("M", bound=ApiModel)
# Called after each rate-limit turn of a call and before its request leaves; raising keeps it
# off the wire (the exception comes through the call unchanged, never retried).
BeforeSend = Callable[[], None]
# Without a Retry-After, a 429 still pauses every caller for this long: one server window.
_PAUSE_WITHOUT_RETRY_AFTER = 1.0


class GoToClient:
    """One client per run; `async with GoToClient(...) as client:` opens and closes it.

    Every request goes through the token manager's HTTP client (`auth.http`), so a run has one
    connection pool; tests inject the transport there. Setting `stop` (the run's: see
    `service/context.py`) ends retries and keeps new attempts from starting, including one
    that waits for its rate-limit turn: such calls raise `Stopped`, which says whether an
    earlier attempt of the call went out. A request already on the wire is answered.
    """

    def __init__(
        self,
        api_base_url: str,
        auth: TokenManager,
        rate_limit: float,
        *,
        call_deadline: float = 300.0,
        max_attempts: int = 10,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_cap: float = 120.0,
        limiter_margin: float = 0.02,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        stop: asyncio.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = api_base_url.rstrip("/")
        self.auth = auth
        self.stop = stop
        self._pause = interruptible(sleep, stop)
        self.limiter = RateLimiter(
            rate_limit, margin=limiter_margin, clock=clock, sleep=self._pause
        )
        if auth.limiter is None:
            auth.limiter = self.limiter
        self.stats = RequestStats()
        self.call_deadline = call_deadline
        self.max_response_bytes = max_response_bytes
        self._max_attempts = max_attempts
        self._wait = RetryWait(backoff_initial, backoff_max, retry_after_cap)
        self._retry_after_cap = retry_after_cap
        self._clock = clock
        self._wall_clock = wall_clock

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
        await self.auth.aclose()

    def clock_skew_seconds(self) -> float | None:
        """Host clock minus the server's, from the latest API or token answer's `Date` header."""
        return self.auth.skew.seconds

    @property
    def account_key(self) -> str | None:
        """The account the token answer named, once a token was obtained."""
        return self.auth.account_key

    # The API's calls, one method each.
    async def organizers(self) -> Parsed[Organizer]:
        """Every organizer of the account."""
        return await self._list(Organizer, "/organizers")

    async def groups(self) -> Parsed[Group]:
        """Every group of the account."""
        return await self._list(Group, "/groups")

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

    async def delete_session(
        self, organizer_key: int, session_id: int, *, before_send: BeforeSend | None = None
    ) -> None:
        """Delete a session with its attendee list and recordings; NotFound when it is absent."""
        await self._call(
            "DELETE",
            "/organizers/{organizerKey}/sessions/{sessionId}",
            organizerKey=organizer_key,
            sessionId=session_id,
            before_send=before_send,
        )

    async def delete_attendees(
        self, organizer_key: int, session_id: int, *, before_send: BeforeSend | None = None
    ) -> None:
        """Delete a session's attendee list; NotFound when the session is absent."""
        await self._call(
            "DELETE",
            "/organizers/{organizerKey}/sessions/{sessionId}/attendees",
            organizerKey=organizer_key,
            sessionId=session_id,
            before_send=before_send,
        )

    async def delete_recordings(
        self, organizer_key: int, session_id: int, *, before_send: BeforeSend | None = None
    ) -> None:
        """Delete a session's recordings; NotFound when the session is absent."""
        await self._call(
            "DELETE",
            "/organizers/{organizerKey}/sessions/{sessionId}/recordings",
            organizerKey=organizer_key,
            sessionId=session_id,
            before_send=before_send,
        )

    # The machinery: one logical call = retried attempts under one deadline.

    async def _list(
        self,
        model: type[M],
        template: str,
        query: dict[str, str] | None = None,
        **keys: Any,
    ) -> Parsed[M]:
        path = template.format(**keys)
        answer = await self._call("GET", template, query=query, **keys)
        payload: Any = answer.json("GET", path)
        if not isinstance(payload, list):
            raise MalformedResponse(
                "GET", path, answer.status, answer.text, detail="expected a JSON array"
            )
        return parse_items(model, payload, f"GET {path}")

    async def _call(
        self,
        method: str,
        template: str,
        query: dict[str, str] | None = None,
        *,
        before_send: BeforeSend | None = None,
        **keys: Any,
    ) -> Answer:
        path = template.format(**keys)
        self.stats.calls += 1
        went = _Sent()
        retrier = retrying(
            attempts=self._max_attempts,
            deadline=self.call_deadline,
            clock=self._clock,
            wait=self._wait,
            sleep=self._pause,
            before_sleep=self._note_retry(method, template),
        )
        try:
            async with asyncio.timeout(self.call_deadline):
                return await retrier(
                    self._attempt,
                    method,
                    template,
                    path,
                    query or {},
                    before_send=before_send,
                    went=went,
                )
        except Retryable as exc:
            raise _final_error(method, path, exc) from None
        except (StopRequested, Stopped):  # Stopped: the token request this call waited for
            raise Stopped(method, path, sent=went.sent) from None
        except TimeoutError:
            raise ApiError(
                method,
                path,
                None,
                detail=f"no answer within the call's {self.call_deadline:g} s deadline",
            ) from None

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
        self,
        method: str,
        template: str,
        path: str,
        query: dict[str, str],
        *,
        before_send: BeforeSend | None,
        went: _Sent,
    ) -> Answer:
        answer, token = await self._send(
            method, template, path, query, before_send=before_send, went=went
        )
        if _token_refused(answer):
            # Expired or revoked: refresh (once for all concurrent callers) and try again.
            self.auth.invalidate(token)
            self.stats.token_retries += 1
            answer, _ = await self._send(
                method, template, path, query, before_send=before_send, went=went
            )
        return self._judge(method, path, answer)

    async def _send(
        self,
        method: str,
        template: str,
        path: str,
        query: dict[str, str],
        *,
        before_send: BeforeSend | None,
        went: _Sent,
    ) -> tuple[Answer, str]:
        self._unless_stopped()
        # The request is built before the turn, so that little work is left between the turn
        # and the wire. Its token is kept if it is still valid after the turn, though due for
        # a refresh: a turn given up would be a request the limiter counted but never sent.
        token = await self.auth.access_token()
        request = self.auth.http.build_request(
            method,
            self.base_url + path,
            params=query,
            headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
        )
        turn = await self.limiter.acquire()
        if before_send is not None:
            # The caller's last word, after the rate-limit turn and before every attempt: it
            # raises to keep this request off the wire (a hold placed while it waited).
            before_send()

        async def trace(event: str, _info: dict[str, Any]) -> None:
            if event == "http11.send_request_headers.started":
                self.limiter.left_at(turn, self._clock())

        request.extensions["trace"] = trace
        if not self.auth.is_valid(token):
            token = await self.auth.access_token()
            request.headers["Authorization"] = f"Bearer {token}"
        # The last look before the wire: a stop that came while this request waited (for its
        # turn, behind the limiter's queue, for a token) keeps it off the wire.
        self._unless_stopped()
        went.sent = True
        try:
            answer = await send(
                self.auth.http, request, endpoint=path, max_bytes=self.max_response_bytes
            )
        except Unanswered as exc:
            self.stats.record_transport_error(method, template, exc.kind)
            raise Retryable(None, "", exc.kind) from None
        if method == "DELETE":
            failpoints.hit("after_send")
        self.auth.skew.observe(answer.server_time(), self._wall_clock())
        self.stats.record_response(method, template, answer.status)
        return answer, token

    def _unless_stopped(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise StopRequested

    def _judge(self, method: str, path: str, answer: Answer) -> Answer:
        status = answer.status
        if status == 429:
            retry_after = parse_retry_after(answer.headers.get("Retry-After"), self._wall_clock())
            pause = _PAUSE_WITHOUT_RETRY_AFTER if retry_after is None else retry_after
            self.limiter.slow_down(min(pause, self._retry_after_cap))
            raise Retryable(status, answer.text, "HTTP 429", retry_after)
        if status >= 500:
            raise Retryable(status, answer.text, f"HTTP {status}")
        if status == 404:
            raise NotFound(method, path, status, answer.text)
        if status in (401, 403):
            raise AuthError(
                method,
                path,
                status,
                answer.text,
                hint="check that the token's user has the admin role and the Admin Center scope;"
                " `retention auth status` shows who the token belongs to",
            )
        if not 200 <= status < 300:
            raise ApiError(method, path, status, answer.text)
        self.limiter.succeeded()
        return answer


class _Sent:
    """Whether an attempt of one call has gone out: a stop after it cannot say "not sent"."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = False


def _token_refused(answer: Answer) -> bool:
    if answer.status == 401:
        return True
    if answer.status != 403:
        return False
    try:
        body = answer.json("", "")
    except ApiError:
        return False
    return isinstance(body, dict) and body.get("int_err_code") == "InvalidToken"


def _final_error(method: str, path: str, failure: Retryable) -> ApiError:
    detail = f"{failure.kind}, still failing after retries"
    if failure.status == 429:
        return RateLimited(method, path, 429, failure.body, detail=detail)
    return ApiError(method, path, failure.status, failure.body, detail=detail)


def _range(start: datetime, end: datetime) -> dict[str, str]:
    return {"startDate": format_query_time(start), "endDate": format_query_time(end)}
