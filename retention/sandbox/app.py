"""The sandbox ASGI application: API routes, OAuth, inspection and control, behind the gate."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from retention.sandbox import api, deletions
from retention.sandbox.account import Account, Session
from retention.sandbox.faults import (
    API_PREFIX,
    RETRY_AFTER_MODES,
    Controls,
    Gate,
    RequestLog,
    SandboxOptions,
)
from retention.sandbox.oauth import TokenStore, authorize_endpoint, token_endpoint

API_ROUTES: list[tuple[str, api.Handler, str]] = [
    ("/organizers", api.all_organizers, "GET"),
    ("/organizers/{organizerKey}", api.one_organizer, "GET"),
    ("/organizers/{organizerKey}/historicalMeetings", api.organizer_history, "GET"),
    ("/organizers/{organizerKey}/upcomingMeetings", api.organizer_upcoming, "GET"),
    ("/organizers/{organizerKey}/attendees", api.organizer_attendees, "GET"),
    ("/organizers/{organizerKey}/sessions/{sessionId}", deletions.delete_session, "DELETE"),
    (
        "/organizers/{organizerKey}/sessions/{sessionId}/attendees",
        deletions.delete_attendees,
        "DELETE",
    ),
    (
        "/organizers/{organizerKey}/sessions/{sessionId}/recordings",
        deletions.delete_recordings,
        "DELETE",
    ),
    ("/historicalMeetings", api.own_history, "GET"),
    ("/upcomingMeetings", api.own_upcoming, "GET"),
    ("/meetings/{meetingId}", api.get_meeting, "GET"),
    ("/meetings/{meetingId}/historicalMeetings", api.meeting_history, "GET"),
    ("/meetings/{meetingId}/attendees", api.meeting_attendees, "GET"),
    ("/groups", api.groups, "GET"),
    ("/groups/{groupKey}/organizers", api.group_organizers, "GET"),
    ("/groups/{groupKey}/historicalMeetings", api.group_history, "GET"),
    ("/groups/{groupKey}/upcomingMeetings", api.group_upcoming, "GET"),
    ("/groups/{groupKey}/attendees", api.group_attendees, "GET"),
]


def create_app(account: Account, options: SandboxOptions | None = None) -> Starlette:
    """The sandbox serving `account`; `app.state` holds `account`, `tokens`, `controls`, `log`."""
    options = options or SandboxOptions()
    controls = Controls.from_options(options)
    log = RequestLog()
    routes = [Route(API_PREFIX + path, fn, methods=[verb]) for path, fn, verb in API_ROUTES]
    routes += [
        Route("/oauth/token", token_endpoint, methods=["POST"]),
        Route("/oauth/authorize", authorize_endpoint, methods=["GET"]),
        Route("/_sandbox/state", state_endpoint, methods=["GET"]),
        Route("/_sandbox/requests", requests_endpoint, methods=["GET"]),
        Route("/_sandbox/control", control_endpoint, methods=["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Gate, controls=controls, log=log, options=options)],
    )
    app.state.account = account
    app.state.options = options
    app.state.controls = controls
    app.state.log = log
    app.state.tokens = TokenStore(account, controls, options.rotate_refresh_tokens, options.clock)
    return app


def account_state(account: Account, now: int | None = None) -> dict[str, Any]:
    """Counts and id lists of what the account still holds; with `now`, of what history serves
    then (finished sessions), the others counted apart as `ongoing` and `upcoming`."""
    every = list(account.iter_sessions())
    sessions = every if now is None else [s for s in every if _finished_by(s, now)]
    recorded = [s for s in sessions if s.recording is not None]
    with_attendees = [s for s in sessions if s.attendee_count > 0]
    state: dict[str, Any] = {
        "organizers": len(account.organizers),
        "groups": len(account.groups),
        "meetings": len(account.meetings),
        "sessions": len(sessions),
        "recordings": len(recorded),
        "recording_bytes": sum(s.recording.file_size for s in recorded if s.recording),
        "attendee_lists": len(with_attendees),
        "session_ids": [s.session_id for s in sessions],
        "recording_session_ids": [s.session_id for s in recorded],
        "attendee_session_ids": [s.session_id for s in with_attendees],
    }
    if now is not None:
        state["upcoming"] = sum(1 for s in every if s.start > now)
        state["ongoing"] = len(every) - len(sessions) - state["upcoming"]
    return state


def _finished_by(session: Session, now: int) -> bool:
    return session.start <= now and (session.end is None or session.end <= now)


async def state_endpoint(request: Request) -> JSONResponse:
    """GET /_sandbox/state: what history serves now, plus the ongoing and upcoming counts."""
    return JSONResponse(account_state(request.app.state.account, api.now_of(request)))


async def requests_endpoint(request: Request) -> JSONResponse:
    """GET /_sandbox/requests[?since=N]: the request log from index N."""
    since = request.query_params.get("since", "0")
    if not since.isdigit():
        return JSONResponse({"error": "since must be a non-negative integer"}, status_code=400)
    log: RequestLog = request.app.state.log
    return JSONResponse(log.since(int(since)))


def _apply_control(request: Request, name: str, value: Any) -> str | None:
    """Set one control; returns a problem description when the value is not acceptable."""
    controls: Controls = request.app.state.controls
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if name == "fault_rate" and number and 0 <= value <= 1:
        controls.fault_rate = float(value)
    elif name == "latency_ms" and number and value >= 0:
        controls.latency_ms = float(value)
    elif name == "rate_limit" and (value is None or (number and value > 0)):
        controls.rate_limit = value
    elif name == "retry_after" and (
        value in RETRY_AFTER_MODES or (isinstance(value, int) and not isinstance(value, bool))
    ):
        controls.retry_after = value
    elif name in ("burst_429", "token_ttl") and isinstance(value, int) and value >= 0:
        setattr(controls, name, value)
    elif name == "delete_status" and (
        value is None or (isinstance(value, int) and 200 <= value < 600)
    ):
        controls.delete_status = value
    elif name == "hang" and isinstance(value, bool):
        (controls.released.clear if value else controls.released.set)()
    elif name == "revoke_tokens" and isinstance(value, bool):
        if value:
            request.app.state.tokens.revoke_all()
    elif name == "date_offset" and number and math.isfinite(value):
        controls.date_offset = float(value)
    elif name == "move_organizer":
        return move_organizer(request.app.state.account, value)
    else:
        return f"{name}: {value!r} is not an accepted value"
    return None


def _key(value: Any) -> int | None:
    """An integer key given as an integer or a digit string, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def move_organizer(account: Account, value: Any) -> str | None:
    """Move an organizer into another group; a problem description when the move is not valid."""
    if not isinstance(value, dict) or set(value) != {"organizerKey", "groupKey"}:
        return f"move_organizer: {value!r} is not an object with organizerKey and groupKey"
    organizer_key, group_key = _key(value["organizerKey"]), _key(value["groupKey"])
    if organizer_key is None or organizer_key not in account.organizers:
        return f"move_organizer: organizerKey {value['organizerKey']!r} is not an organizer"
    if group_key is None or group_key not in account.groups:
        return f"move_organizer: groupKey {value['groupKey']!r} is not a group"
    organizer = account.organizers[organizer_key]
    account.organizers[organizer_key] = dataclasses.replace(organizer, group_key=group_key)
    account.reindex()
    return None


async def control_endpoint(request: Request) -> JSONResponse:
    """POST /_sandbox/control {name: value, …}; GET shows the current values."""
    controls: Controls = request.app.state.controls
    if request.method == "GET":
        return JSONResponse(controls.view())
    try:
        changes = json.loads(await request.body())
    except json.JSONDecodeError as exc:
        return JSONResponse({"error": f"body is not JSON: {exc.msg}"}, status_code=400)
    if not isinstance(changes, dict):
        return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
    problems = [p for k, v in changes.items() if (p := _apply_control(request, k, v)) is not None]
    if problems:
        return JSONResponse({"error": "; ".join(problems)}, status_code=400)
    return JSONResponse(controls.view())
