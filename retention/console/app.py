"""The console's web application: routes, the identity gate, the security headers.

Served by the daemon on RETENTION_CONSOLE_ADDRESS from the loop that serves `/metrics`. Every
request passes the gate first (identity/py): without a trusted identity 401, without the right
to view 403, and nothing else. Pages are rendered on the server (Jinja2, autoescaped), with
no inline script and styles from a file; the one script is the passkey ceremony. A POST that
changes anything needs JSON from the console's own origin and a valid passkey assertion.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from retention.approvals.store import decisions_signed
from retention.console import pages
from retention.console.ceremony import Registrations
from retention.console.decisions import approve, challenge_for, chosen
from retention.console.identity import Gate, is_approver
from retention.console.lifting import lift_challenge, lift_signed, postponements
from retention.errors import InvalidInput, Refused, RetentionError
from retention.service.statedir import InstanceLocked
from retention.settings import Settings

Clock = Callable[[], datetime]
Status = Callable[[], Mapping[str, Any]]
_STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_CACHED_REPORTS = 8


@cache
def _templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("retention.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
    )
    environment.filters["short"] = lambda text: str(text)[:16] + "…"
    return environment


class Gatekeeper:
    """ASGI middleware: the identity gate and the security headers of every answer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.gate = Gate.of(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        peer = request.client.host if request.client else None
        identity = self.gate.signed_in(peer, request.headers)
        if identity is None:
            answer: Response = PlainTextResponse("sign in through the proxy", status_code=401)
        elif not self.gate.may_view(identity, self.settings):
            answer = PlainTextResponse(f"{identity} may not view this console", status_code=403)
        else:
            scope.setdefault("state", {})["identity"] = identity
            await self.app(scope, receive, _with_headers(send))
            return
        answer.headers.update(_HEADERS)
        await answer(scope, receive, send)


def _with_headers(send: Send) -> Send:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _value in headers}
            for name, value in _HEADERS.items():
                if name.lower().encode() not in present:
                    headers.append((name.lower().encode(), value.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return sending  # type: ignore[return-value]


@dataclass
class Handlers:
    """The console's routes over the daemon's settings, health report and clock."""

    settings: Settings
    status: Status
    clock: Clock
    registrations: Registrations = field(default_factory=Registrations)
    reports: dict[tuple[str, str, int], str] = field(default_factory=dict)

    def page(self, template: str, request: Request, code: int = 200, **values: Any) -> Response:
        identity = request.state.identity
        html = (
            _templates()
            .get_template(template)
            .render(identity=identity, approver=is_approver(identity, self.settings), **values)
        )
        return HTMLResponse(html, status_code=code)

    async def overview(self, request: Request) -> Response:
        rows = await run_in_threadpool(pages.proposal_rows, self.settings, self.clock())
        runs = await run_in_threadpool(pages.last_runs, self.settings)
        postponed = await run_in_threadpool(postponements, self.settings)
        return self.page(
            "overview.html",
            request,
            health=self.status(),
            runs=runs,
            proposals=rows,
            postponed=postponed,
        )

    async def proposal(self, request: Request) -> Response:
        found = pages.find_proposal(self.settings, request.path_params["name"])
        if found is None:
            return self.page("missing.html", request, 404, what="proposal")
        query = pages.ItemQuery(
            **{
                key: request.query_params.get(key, "")[:200]
                for key in ("organizer", "group", "subject", "date")
            }
        )
        view = await run_in_threadpool(pages.proposal_view, self.settings, found, query)
        return self.page("proposal.html", request, view=view, query=query, name=found.path.name)

    async def explain(self, request: Request) -> Response:
        session = request.query_params.get("session", "").strip()[:40]
        organizer = request.query_params.get("organizer", "").strip()[:200]
        verdicts, problem = [], ""
        if session or organizer:
            explaining = partial(
                pages.explain, self.settings, self.clock(), session=session, organizer=organizer
            )
            try:
                verdicts = await run_in_threadpool(explaining)
            except RetentionError as exc:
                problem = exc.message
        return self.page(
            "explain.html",
            request,
            session=session,
            organizer=organizer,
            verdicts=verdicts,
            problem=problem,
        )

    async def record(self, request: Request) -> Response:
        since = request.query_params.get("since", "")[:40]
        until = request.query_params.get("until", "")[:40]
        return self.page("record.html", request, since=since, until=until)

    async def record_report(self, request: Request) -> Response:
        """The report of the period, rendered in a worker thread (a full verify must not stall
        the daemon's loop), cached per period until the record grows."""
        since = request.query_params.get("since", "")[:40]
        until = request.query_params.get("until", "")[:40]
        try:
            chosen = pages.period(since, until)
            rows = await run_in_threadpool(pages.record_rows, self.settings)
            key = (chosen.since or "", chosen.until or "", rows)
            html = self.reports.get(key)
            if html is None:
                generated = self.clock().isoformat(timespec="seconds")
                html = await run_in_threadpool(
                    pages.record_report, self.settings, chosen, generated
                )
                if len(self.reports) >= _CACHED_REPORTS:
                    self.reports.pop(next(iter(self.reports)))
                self.reports[key] = html
        except RetentionError as exc:
            return PlainTextResponse(exc.message, status_code=400)
        return _report_response(html)

    async def passkeys_page(self, request: Request) -> Response:
        return self.page("passkeys.html", request, origin=self.settings.console_origin)

    async def passkey_options(self, request: Request) -> Response:
        await _posted(request, self.settings)
        identity = request.state.identity
        origin = _origin(self.settings)
        return JSONResponse(self.registrations.options(identity, origin, self.clock()))

    async def passkey_register(self, request: Request) -> Response:
        body = await _posted(request, self.settings)
        identity = request.state.identity
        line = self.registrations.line(identity, body, _origin(self.settings), self.clock())
        return JSONResponse({"line": line})

    async def decision_challenge(self, request: Request) -> Response:
        body = await _posted(request, self.settings)
        found = pages.find_proposal(self.settings, request.path_params["name"])
        if found is None:
            return JSONResponse({"error": "no such proposal"}, status_code=404)
        identity = request.state.identity
        signing = chosen(found, body, identity, self.clock())
        made = challenge_for(self.settings, found, signing, identity, self.clock())
        return JSONResponse(made.as_json())

    async def decision_approve(self, request: Request) -> Response:
        body = await _posted(request, self.settings)
        found = pages.find_proposal(self.settings, request.path_params["name"])
        if found is None:
            return JSONResponse({"error": "no such proposal"}, status_code=404)
        approval = approve(self.settings, found, body, request.state.identity, self.clock())
        tally = found.tally(self.settings)
        return JSONResponse(
            {
                "verdict": approval.verdict,
                "by": approval.principal,
                "approvals": len(tally.valid),
            },
            status_code=201,
        )

    async def decision_document(self, request: Request) -> Response:
        """A decision signed so far, as `retention approve --decision FILE` takes it."""
        found = pages.find_proposal(self.settings, request.path_params["name"])
        wanted = request.path_params["hash"]
        if found is not None:
            signed = decisions_signed(found.path, found.plan.recorded_hash)
            for decision, _who in signed:
                if decision.hash == wanted:
                    return JSONResponse(
                        decision.as_json(),
                        headers={"Content-Disposition": f'attachment; filename="{wanted}.json"'},
                    )
        return JSONResponse({"error": "no such decision"}, status_code=404)

    async def lift_options(self, request: Request) -> Response:
        body = await _posted(request, self.settings)
        made = lift_challenge(self.settings, body, request.state.identity, self.clock())
        return JSONResponse(made)

    async def lift(self, request: Request) -> Response:
        body = await _posted(request, self.settings)
        try:
            done = await lift_signed(self.settings, body, request.state.identity, self.clock())
        except InstanceLocked:
            return JSONResponse({"error": "a run is in progress: try again"}, status_code=409)
        if not done:
            return JSONResponse({"error": "no such postponement in force"}, status_code=404)
        return JSONResponse({"lifted": True, "by": request.state.identity})


def console_app(settings: Settings, status: Status, clock: Clock) -> ASGIApp:
    """The console for these settings; `status` is the daemon's health report."""
    handlers = Handlers(settings, status, clock)
    routes = [
        Route("/", handlers.overview),
        Route("/proposals/{name}", handlers.proposal),
        Route(
            "/proposals/{name}/challenge",
            _json_errors(handlers.decision_challenge),
            methods=["POST"],
        ),
        Route(
            "/proposals/{name}/approve", _json_errors(handlers.decision_approve), methods=["POST"]
        ),
        Route("/postponements/challenge", _json_errors(handlers.lift_options), methods=["POST"]),
        Route("/postponements/lift", _json_errors(handlers.lift), methods=["POST"]),
        Route("/proposals/{name}/decisions/{hash:str}.json", handlers.decision_document),
        Route("/explain", handlers.explain),
        Route("/record", handlers.record),
        Route("/record/report", handlers.record_report),
        Route("/passkeys", handlers.passkeys_page),
        Route("/passkeys/options", _json_errors(handlers.passkey_options), methods=["POST"]),
        Route("/passkeys/register", _json_errors(handlers.passkey_register), methods=["POST"]),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    return Gatekeeper(Starlette(routes=routes), settings)


def _origin(settings: Settings) -> str:
    if not settings.console_origin:
        raise Refused(
            "RETENTION_CONSOLE_ORIGIN is not set: passkeys cannot be used",
            hint="set it to the console's address as browsers see it",
            reason="approvals",
        )
    return settings.console_origin


async def _posted(request: Request, settings: Settings) -> dict[str, Any]:
    """The JSON body of a POST from the console's own page (InvalidInput/Refused otherwise)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise InvalidInput("the console takes JSON posts only", hint="use the console's page")
    if request.headers.get("origin") != _origin(settings):
        raise Refused(
            "the post did not come from the console's origin",
            hint="use the console's page",
            reason="approvals",
        )
    try:
        body = await request.json()
    except ValueError:
        raise InvalidInput("the post is not JSON", hint="use the console's page") from None
    if not isinstance(body, dict):
        raise InvalidInput("the post is not a JSON object", hint="use the console's page")
    return body


def _json_errors(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Refusals and bad input as JSON: 403 and 400; nothing was written."""

    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except Refused as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=403)
        except InvalidInput as exc:
            return JSONResponse({"error": exc.message, "hint": exc.hint}, status_code=400)

    return handle


def _report_response(html: str) -> Response:
    """The report page in its frame: its own styles allowed by hash, nothing else."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
        for style in _STYLE.findall(html)
    )
    allowed = hashes or "'none'"
    policy = f"default-src 'none'; style-src {allowed}; img-src data:; "
    policy += "frame-ancestors 'self'; base-uri 'none'; form-action 'none'"
    response = HTMLResponse(html)
    response.headers.update(
        {
            "Content-Security-Policy": policy,
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        }
    )
    return response
