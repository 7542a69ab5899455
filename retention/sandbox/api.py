"""The GoTo Meeting REST endpoints under `/G2M/rest`, with their errors and parameters."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from retention.sandbox import render
from retention.sandbox.account import Account, Session
from retention.sandbox.oauth import INVALID_TOKEN, TokenStore
from retention.sandbox.times import parse_iso

GROUP_LIMIT = 50
DEFAULT_MEETING_HISTORY_DAYS = 30
Handler = Callable[[Request], Awaitable[Any]]


class ApiError(Exception):
    """An error answer: HTTP status plus GoTo's `int_err_code`/`msg` body."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


def _bad(msg: str) -> ApiError:
    return ApiError(400, "InvalidRequest", msg)


def _missing(what: str) -> ApiError:
    return ApiError(404, "NotFound", f"{what} not found")


def account_of(request: Request) -> Account:
    account: Account = request.app.state.account
    return account


def now_of(request: Request) -> int:
    """The account's fixed `now`, or the sandbox clock when the account follows real time."""
    account = account_of(request)
    return account.now if account.now is not None else int(request.app.state.options.clock())


def path_int(request: Request, name: str) -> int:
    text = request.path_params[name]
    if not text.isdigit():
        raise _bad(f"Path parameter {name} must be an integer, got {text!r}")
    return int(text)


def _query_time(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise _bad(f"Required query parameter {name} is missing")
        return default
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise _bad(f"Query parameter {name}: {exc}") from exc


def _date_range(request: Request, default_days: int | None = None) -> tuple[int, int]:
    now = now_of(request)
    start_default = None if default_days is None else now - default_days * 86_400
    start = _query_time(request, "startDate", start_default)
    end = _query_time(request, "endDate", None if default_days is None else now)
    if end < start:
        raise _bad("Query parameter endDate is before startDate")
    return start, end


def _query_count(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return None
    if not text.isdigit():
        raise _bad(f"Query parameter {name} must be a non-negative integer, got {text!r}")
    return int(text)


def _finished(sessions: list[Session], now: int) -> list[Session]:
    """History leaves out sessions still running (and those not yet started)."""
    return [s for s in sessions if s.start <= now and (s.end is None or s.end <= now)]


def api(handler: Handler) -> Handler:
    """Checks the bearer token, maps ApiError to its JSON answer, renders lists as JSON."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        tokens: TokenStore = request.app.state.tokens
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not tokens.is_valid(token.strip()):
            return JSONResponse(INVALID_TOKEN, status_code=403)
        try:
            result = await handler(request)
        except ApiError as exc:
            body = {"int_err_code": exc.code, "msg": exc.msg}
            return JSONResponse(body, status_code=exc.status)
        return result if isinstance(result, Response) else JSONResponse(result)

    return endpoint


def _path_key(request: Request, name: str, table: Mapping[int, Any], what: str) -> int:
    """The key in path parameter `name`; 404 when `table` has no such entry."""
    key = path_int(request, name)
    if key not in table:
        raise _missing(f"{what} {key}")
    return key


def organizer_key_param(request: Request) -> int:
    return _path_key(request, "organizerKey", account_of(request).organizers, "Organizer")


def _group_key(request: Request, *, limited: bool) -> int:
    account = account_of(request)
    key = _path_key(request, "groupKey", account.groups, "Group")
    size = len(account.group_members(key))
    if limited and size > GROUP_LIMIT:
        raise ApiError(
            400,
            "InvalidRequest",
            f"Group {key} has {size} organizers; this call serves groups of at most {GROUP_LIMIT}",
        )
    return key


def _meeting_id(request: Request) -> int:
    return _path_key(request, "meetingId", account_of(request).meetings, "Meeting")


@api
async def all_organizers(request: Request) -> Any:
    account = account_of(request)
    email = request.query_params.get("email")
    chosen = [
        org
        for org in account.organizers.values()
        if email is None or org.email.lower() == email.lower()
    ]
    return [render.organizer_row(account, org, legacy_key=True) for org in chosen]


@api
async def one_organizer(request: Request) -> Any:
    account = account_of(request)
    organizer = account.organizers[organizer_key_param(request)]
    return [render.organizer_row(account, organizer, legacy_key=True)]


@api
async def groups(request: Request) -> Any:
    account = account_of(request)
    return [render.group_row(account, group) for group in account.groups.values()]


@api
async def group_organizers(request: Request) -> Any:
    account = account_of(request)
    members = account.group_members(_group_key(request, limited=False))
    return [render.organizer_row(account, account.organizers[k], legacy_key=False) for k in members]


def _organizer_history(request: Request, organizer_key: int) -> list[dict[str, Any]]:
    account = account_of(request)
    start, end = _date_range(request)
    sessions = _finished(account.organizer_sessions(organizer_key, start, end), now_of(request))
    return [render.history_row(account, session) for session in sessions]


@api
async def organizer_history(request: Request) -> Any:
    return _organizer_history(request, organizer_key_param(request))


@api
async def own_history(request: Request) -> Any:
    return _organizer_history(request, account_of(request).admin.organizer_key)


def _group_sessions(request: Request, group_key: int) -> list[Session]:
    account = account_of(request)
    start, end = _date_range(request)
    sessions: list[Session] = []
    for organizer_key in account.group_members(group_key):
        sessions.extend(account.organizer_sessions(organizer_key, start, end))
    sessions.sort(key=lambda s: (s.start, s.session_id))
    return _finished(sessions, now_of(request))


@api
async def group_history(request: Request) -> Any:
    account = account_of(request)
    sessions = _group_sessions(request, _group_key(request, limited=True))
    return [render.group_history_row(account, session) for session in sessions]


@api
async def meeting_history(request: Request) -> Any:
    """Meeting-id history; the reference lets an admin query only their own meetings, so
    another organizer's meeting answers `[]` (an empty answer proves nothing)."""
    account = account_of(request)
    meeting_id = _meeting_id(request)
    if account.meetings[meeting_id].organizer_key != account.admin.organizer_key:
        return []
    start, end = _date_range(request, DEFAULT_MEETING_HISTORY_DAYS)
    first = _query_count(request, "firstResult") or 0
    limit = _query_count(request, "maxResults")
    sessions = _finished(account.meeting_sessions(meeting_id, start, end), now_of(request))
    page = sessions[first:] if limit is None else sessions[first : first + limit]
    return [render.history_row(account, session) for session in page]


def _upcoming(request: Request, organizer_keys: list[int], *, group_shape: bool) -> Any:
    account, now = account_of(request), now_of(request)
    sessions = [s for k in organizer_keys for s in account.future_sessions(k, now)]
    sessions.sort(key=lambda s: (s.start, s.session_id))
    return [render.upcoming_row(account, s, group_shape=group_shape) for s in sessions]


@api
async def organizer_upcoming(request: Request) -> Any:
    return _upcoming(request, [organizer_key_param(request)], group_shape=False)


@api
async def own_upcoming(request: Request) -> Any:
    return _upcoming(request, [account_of(request).admin.organizer_key], group_shape=False)


@api
async def group_upcoming(request: Request) -> Any:
    members = account_of(request).group_members(_group_key(request, limited=True))
    return _upcoming(request, members, group_shape=True)


@api
async def get_meeting(request: Request) -> Any:
    account = account_of(request)
    meeting = account.meetings[_meeting_id(request)]
    return [render.meeting_row(account, meeting, now_of(request))]


RowMaker = Callable[..., dict[str, Any]]


def _attendee_rows(request: Request, sessions: list[Session], row: RowMaker) -> Any:
    account = account_of(request)
    return [
        row(account, session, attendee)
        for session in _finished(sessions, now_of(request))
        for attendee in account.attendees_of(session)
    ]


@api
async def organizer_attendees(request: Request) -> Any:
    organizer_key = organizer_key_param(request)
    start, end = _date_range(request)
    sessions = account_of(request).organizer_sessions(organizer_key, start, end)
    return _attendee_rows(request, sessions, render.organizer_attendee_row)


@api
async def meeting_attendees(request: Request) -> Any:
    sessions = account_of(request).all_meeting_sessions(_meeting_id(request))
    return _attendee_rows(request, sessions, render.meeting_attendee_row)


@api
async def group_attendees(request: Request) -> Any:
    sessions = _group_sessions(request, _group_key(request, limited=True))
    return _attendee_rows(request, sessions, render.group_attendee_row)
