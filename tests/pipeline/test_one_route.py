"""Every route decides through the one admission step on current facts, in-process on the sandbox.

Each test drives a route's real entry point (`pipeline.run`, `pipeline.apply`, the plan preview,
the daemon's review job) against the sandbox over the ASGI transport, with real SQLite files.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from retention.audit.store import connect_reader
from retention.cli import cli
from retention.engine.planfile import load_plan_file
from retention.errors import Refused
from retention.goto.client import GoToClient
from retention.sandbox import Account, SandboxOptions, create_app, generate_account
from retention.sandbox.app import move_organizer
from retention.sandbox.policies import policy_set, rule
from retention.service import pipeline
from retention.service.context import MetricsSink, RunContext
from retention.service.preview import preview
from retention.settings import Settings

pytestmark = pytest.mark.anyio
ACCOUNT_NOW = datetime(2026, 11, 23, tzinfo=UTC)


@dataclass
class Route:
    """An account served in-process, a state directory, a policy folder, and the pipeline."""

    account: Account
    root: Path
    transport: httpx.AsyncBaseTransport

    @property
    def policy_dir(self) -> Path:
        return self.root / "policies"

    def settings(self, **changes: object) -> Settings:
        return Settings(
            api_base_url="http://127.0.0.1/G2M/rest",
            token_url="http://127.0.0.1/oauth/token",
            client_id="sandbox-client",
            client_secret=SecretStr("sandbox-secret"),
            refresh_token=SecretStr("sandbox-refresh"),
            state_dir=self.root / "state",
            policy_dir=self.policy_dir,
            rate_limit=1000,
            **changes,  # type: ignore[arg-type]
        )

    def context(self, **changes: object) -> RunContext:
        return RunContext(self.settings(**changes), transport=self.transport)

    def write(self, text: str, name: str = "policies.yaml") -> None:
        self.policy_dir.mkdir(exist_ok=True)
        (self.policy_dir / name).write_text(text)

    def recordings_of(self, organizer_key: int) -> int:
        return sum(
            1
            for session in self.account.iter_sessions()
            if session.organizer_key == organizer_key and session.recording is not None
        )

    def outcomes(self) -> Counter[str]:
        conn = connect_reader(self.root / "state" / "audit.db")
        try:
            return Counter(
                row[0] for row in conn.execute("SELECT outcome FROM events WHERE event = 'outcome'")
            )
        finally:
            conn.close()

    def events(self, kind: str) -> list[str]:
        conn = connect_reader(self.root / "state" / "audit.db")
        try:
            return [
                row[0] for row in conn.execute("SELECT data FROM events WHERE event = ?", [kind])
            ]
        finally:
            conn.close()


@pytest.fixture
def route(tmp_path: Path) -> Route:
    account = generate_account(
        seed=3, organizers=6, groups=3, days=30, sessions_per_day=6, now=ACCOUNT_NOW
    )
    app = create_app(account, SandboxOptions())
    return Route(account, tmp_path, httpx.ASGITransport(app=app))


def a_group_member(route: Route) -> tuple[int, int, int]:
    """An organizer with recordings, its group, and another group to move it to."""
    counts = Counter(
        s.organizer_key for s in route.account.iter_sessions() if s.recording is not None
    )
    organizer_key = counts.most_common(1)[0][0]
    group = route.account.organizers[organizer_key].group_key
    other = next(key for key in sorted(route.account.groups) if key != group)
    return organizer_key, group, other


def hold_on_group(group_name: str, hold_id: str = "MOVED") -> str:
    return f"  - id: {hold_id}\n    reason: r\n    scope:\n      groups: [{group_name!r}]\n"


async def run(route: Route, **changes: object) -> None:
    await pipeline.run(route.context(**changes), trigger="test", confirm=None, approved_by="test")


async def test_run_holds_an_organizer_moved_into_a_held_group_since_the_last_scan(
    route: Route,
) -> None:
    organizer, _group, held_group = a_group_member(route)
    name = route.account.groups[held_group].name
    route.write(policy_set(rule("recordings", 1), holds=hold_on_group(name)))
    await preview(route.context(), as_of=None, selected=None, record=False)  # the first scan
    before = route.recordings_of(organizer)
    assert before > 0

    assert (
        move_organizer(route.account, {"organizerKey": organizer, "groupKey": held_group}) is None
    )
    await run(route)

    assert route.recordings_of(organizer) == before, "the group the API gives now decides"
    assert route.outcomes()["deleted"] > 0, "the other organizers' recordings went"


async def test_a_hold_keeps_what_it_covered_after_the_organizer_leaves_its_scope(
    route: Route,
) -> None:
    organizer, group, elsewhere = a_group_member(route)
    name = route.account.groups[group].name
    # Nothing is due yet (a year's rule), so the hold's first run only covers.
    route.write(policy_set(rule("recordings", "1y"), holds=hold_on_group(name)))
    await run(route)
    before = route.recordings_of(organizer)

    assert move_organizer(route.account, {"organizerKey": organizer, "groupKey": elsewhere}) is None
    route.write(policy_set(rule("recordings", 1), holds=hold_on_group(name)))
    await run(route)

    assert route.recordings_of(organizer) == before, "the hold keeps what it covered"
    left = route.events("hold_scope_left")
    assert len(left) == 1
    assert '"hold":"MOVED"' in left[0].replace(" ", "")


async def test_plan_then_apply_records_a_policy_refused_by_its_cap_and_exits_refused(
    route: Route,
) -> None:
    route.write(
        policy_set(rule("recordings", 1, limits="{max_deletions: 2}"), rule("attendees", 1))
    )
    plan = await preview(route.context(), as_of=None, selected=None, record=True)
    document = plan.document()
    assert [(r["policy"], r["by"], r["cap"]) for r in document["refused"]] == [
        ("recordings-1d", "cap:recordings-1d", "max_deletions")
    ]
    path = route.root / "plan.json"
    path.write_text(json.dumps(document))
    with pytest.raises(Refused) as refused:
        await pipeline.apply(
            route.context(), load_plan_file(path), confirm=None, approved_by="test"
        )

    assert refused.value.reason == "cap"
    assert any("recordings-1d" in data for data in route.events("refused"))
    assert route.outcomes()["deleted"] > 0, "the attendee lists went"
    report = route.root / "report.html"
    shown = CliRunner().invoke(
        cli,
        ["audit", "report", "--db", str(route.root / "state" / "audit.db"), "--out", str(report)],
    )
    assert shown.exit_code == 0, shown.output
    page = report.read_text()
    assert 'id="nothing-needs-attention"' not in page
    assert '<tr data-policy="recordings-1d" data-reason="cap">' in page, "listed as unenforced"


class DeleteSpy(httpx.AsyncBaseTransport):
    """The transport, counting the DELETEs that reached the sandbox."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.deletes = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            self.deletes += 1
        return await self.inner.handle_async_request(request)


async def test_a_hold_written_while_a_request_waits_for_its_turn_keeps_it_off_the_wire(
    route: Route,
) -> None:
    route.write(policy_set(rule("recordings", 1)))
    spy = DeleteSpy(route.transport)
    written: list[int] = []

    def slow_turns(made: GoToClient) -> None:
        take_turn = made.limiter.acquire

        async def turn(*, urgent: bool = False) -> float:
            got = await take_turn(urgent=urgent)
            # The second DELETE has passed its gate and waited its turn: the hold comes now.
            if spy.deletes == 1 and not written:
                route.write("holds:\n  - id: LATE\n    reason: r\n    all: true\n", "late.yaml")
                written.append(spy.deletes)
            return got

        made.limiter.acquire = turn  # type: ignore[method-assign]

    ctx = RunContext(
        route.settings(concurrency=1), transport=spy, metrics=MetricsSink(on_client=slow_turns)
    )
    await pipeline.run(ctx, trigger="test", confirm=None, approved_by="test")

    assert written == [1]
    assert spy.deletes == 1, "no DELETE left after the hold file was in place"
    outcomes = route.outcomes()
    assert outcomes["deleted"] == 1
    assert outcomes["skipped_hold"] >= 1
