"""The three deletions: a session, its attendee list, its recordings; 404 when not there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from retention.sandbox.account import Session
from retention.sandbox.api import ApiError, account_of, api, organizer_key_param, path_int
from retention.sandbox.faults import Controls

_FORCED_CODES = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict"}


def _forced(request: Request) -> Response | None:
    """The answer `delete_status` forces on every DELETE, leaving the account untouched."""
    controls: Controls = request.app.state.controls
    status = controls.delete_status
    if status is None:
        return None
    if status == 204:
        return Response(status_code=204)
    code = _FORCED_CODES.get(status, "Error")
    body = {"int_err_code": code, "msg": f"sandbox: every DELETE answers {status}"}
    return JSONResponse(body, status_code=status)


def _session(request: Request) -> Session:
    organizer_key = organizer_key_param(request)
    session_id = path_int(request, "sessionId")
    session = account_of(request).sessions.get(session_id)
    if session is None or session.organizer_key != organizer_key:
        raise ApiError(
            404, "NotFound", f"Session {session_id} of organizer {organizer_key} not found"
        )
    return session


def _delete(request: Request, remove: Callable[[Session], None]) -> Response:
    """`remove` applied to the path's session, unless `delete_status` forces the answer."""
    forced = _forced(request)
    if forced is not None:
        return forced
    remove(_session(request))
    return Response(status_code=204)


def _remove_attendees(session: Session) -> None:
    if session.attendee_count == 0:
        raise ApiError(404, "NotFound", f"Session {session.session_id} has no attendee list")
    session.attendees, session.attendee_count = (), 0


def _remove_recording(session: Session) -> None:
    if session.recording is None:
        raise ApiError(404, "NotFound", f"Session {session.session_id} has no recording")
    session.recording = None


@api
async def delete_session(request: Request) -> Any:
    """Removes the session with its attendee list and recordings."""
    return _delete(request, account_of(request).remove_session)


@api
async def delete_attendees(request: Request) -> Any:
    """Removes the attendee list; the session stays, with `numAttendees` "0"."""
    return _delete(request, _remove_attendees)


@api
async def delete_recordings(request: Request) -> Any:
    """Removes the session's recordings; the `recording` object disappears from history."""
    return _delete(request, _remove_recording)
