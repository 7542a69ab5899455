"""On time, and able to prove it: due times, lateness and overdue removals, in-process on the
sandbox (ASGI transport, real SQLite files) with the clock injected into the daemon.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from approvers import make_key
from prometheus_client.parser import text_string_to_metric_families
from receivers import Receiver
from routes import ACCOUNT_NOW, Folder, Hold, World, invoke

from retention.audit.export import Filters, iter_export
from retention.audit.store import connect_reader
from retention.engine.state import open_state_db
from retention.service.daemon import Daemon
from retention.service.metrics import metrics_app
from retention.service.notify import Notifier
from retention.service.status import exit_code, read_status

pytestmark = pytest.mark.anyio
DAY = timedelta(days=1)
START = ACCOUNT_NOW + timedelta(hours=3)


@dataclass
class Clock:
    """The daemon's clock, moved by the test (the API keeps real time: its `Date` is checked
    against the host's real clock, not the run's)."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def daemon(world: World, clock: Clock, **changes: Any) -> Daemon:
    made = Daemon(world.settings(**changes), Notifier(None), clock=clock, transport=world.spy)
    made.load()
    return made


async def scheduled(made: Daemon) -> None:
    await made.run_due(made.schedules[0].spec)


async def scrape(made: Daemon) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """`/metrics` as {sample name: {labels: value}}, read over ASGI."""
    app = metrics_app(made.metrics, made.health)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://metrics") as client:
        text = (await client.get("/metrics")).text
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def overdue_alerts(receiver: Receiver) -> list[str]:
    return [title for title in receiver.titles() if "overdue" in title]


class Elements(HTMLParser):
    """Every start tag with its attributes, for selectors by attribute."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def having(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _tag, attrs in self.tags if name in attrs]

    def paths(self) -> list[str]:
        return [str(attrs["d"]) for tag, attrs in self.tags if tag == "path" and "d" in attrs]


def report(world: World, out: Path) -> Elements:
    done = invoke(world, "audit", "report", "--out", str(out))
    assert done.exit_code == 0, done.output
    return Elements(out.read_text(encoding="utf-8"))


def exported(world: World) -> list[dict[str, Any]]:
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        return list(iter_export(conn, Filters()))
    finally:
        conn.close()


async def test_a_policy_over_its_cap_grows_overdue_alerts_once_and_resolves_when_raised(
    tmp_path: Path, receiver: Receiver
) -> None:
    clock = Clock(START)
    world = World.make(tmp_path)
    over_cap = Folder(period_days=5, cap=1)
    world.write(over_cap)
    rule = over_cap.rule_name
    settings = {"max_overdue": "3d", "notify": receiver.url, "notify_repeat": "30d"}
    made = daemon(world, clock, **settings)

    seen = []
    for day in (0, 2, 4, 5):
        clock.now = START + day * DAY
        await scheduled(made)
        metrics = await scrape(made)
        status = read_status(made.settings, clock.now)
        (policy,) = status["policies"]
        assert policy["policy"] == rule
        cap_count = metrics["retention_overdue_removals"][(("policy", rule), ("reason", "cap"))]
        age = metrics["retention_oldest_overdue_seconds"][(("policy", rule),)]
        assert cap_count == policy["overdue"] == policy["reasons"].get("cap", 0)
        assert age == policy["oldest_age_seconds"]
        assert exit_code(status) == 1, "a cap refusal, then a policy past the limit"
        late = policy["past_limit"]
        seen.append((policy["overdue"], age, late, len(overdue_alerts(receiver))))

    assert world.spy.deleted == [], "the cap refused every removal"
    counts = [count for count, *_ in seen]
    ages = [age for _, age, *_ in seen]
    assert counts[0] == 0, "nothing is overdue in the run that first loaded the policy"
    assert 0 < counts[1] < counts[2] <= counts[3], counts
    assert ages[1] < ages[2] < ages[3], ages
    assert [late for *_, late, _ in seen] == [False, False, True, True], "past 3d from day 4"
    assert [alerts for *_, alerts in seen] == [0, 0, 1, 1], "once past the limit, once per repeat"
    page = report(world, tmp_path / "report.html")
    (row,) = [r for r in page.having("data-made") if r["data-policy"] == rule]
    assert row["data-overdue"] == str(counts[3])
    assert row["data-since"], "overdue since the policy was first loaded"
    assert row["data-made"] == "0"
    (line,) = [g for g in page.having("data-points") if g["data-policy"] == rule]
    assert line["data-points"] == "4"
    (path,) = page.paths()
    heights = [float(pair.split()[1]) for pair in path.removeprefix("M ").split(" L ")]
    assert heights[0] > heights[1] > heights[2] >= heights[3], "the line rises: SVG y runs down"

    world.write(Folder(period_days=5, cap=1000))
    made.load()
    clock.now = START + 6 * DAY
    await scheduled(made)
    metrics = await scrape(made)
    raised = Folder(period_days=5, cap=1000).rule_name
    assert world.spy.deleted, "with the cap raised, the removals are made"
    status = read_status(made.settings, clock.now)
    assert {p["policy"]: p["overdue"] for p in status["policies"]}[raised] == 0
    assert metrics["retention_oldest_overdue_seconds"][(("policy", raised),)] == 0
    assert exit_code(status) == 0
    assert any(title.startswith("goto-retention: resolved: policy") for title in receiver.titles())
    assert len(overdue_alerts(receiver)) == 2, receiver.titles()  # the alert and its resolution


async def test_removals_made_when_due_are_late_by_less_than_one_run_interval(
    tmp_path: Path,
) -> None:
    clock = Clock(START)
    world = World.make(tmp_path)
    world.write(Folder(period_days=5))
    made = daemon(world, clock)
    for day in (0, 1, 2):
        clock.now = START + day * DAY
        await scheduled(made)

    rows = exported(world)
    late = [row["latenessSeconds"] for row in rows if row["event"] == "outcome"]
    assert len(late) == len(world.spy.deleted) > 0
    intents = {row["seq"]: row["dueAt"] for row in rows if row["event"] == "intent"}
    assert None not in intents.values()
    assert all(row["dueAt"] == intents[row["intent"]] for row in rows if row["event"] == "outcome")
    assert all(seconds is not None and 0 <= seconds < DAY.total_seconds() for seconds in late)
    metrics = await scrape(made)
    rule = Folder(period_days=5).rule_name
    buckets = metrics["retention_removal_lateness_seconds_bucket"]
    within_a_day = buckets[(("le", "86400.0"), ("policy", rule))]
    total = metrics["retention_removal_lateness_seconds_count"][(("policy", rule),)]
    assert within_a_day == total == len(late)

    page = report(world, tmp_path / "report.html")
    (section,) = [s for s in page.having("data-gaps") if s.get("id") == "timeliness"]
    assert section["data-gaps"] == "0", "daily runs of a daily schedule leave no gap"
    (row,) = page.having("data-made")
    assert row["data-made"] == str(len(late))
    assert float(str(row["data-max"])) < DAY.total_seconds()

    clock.now = START + 6 * DAY  # the daemon was down for four days
    await scheduled(made)
    page = report(world, tmp_path / "report.html")
    (section,) = [s for s in page.having("data-gaps") if s.get("id") == "timeliness"]
    assert section["data-gaps"] == "1"
    (path,) = page.paths()
    assert path.count("M ") == 1, "the line stops at the gap"
    assert len(page.having("cx")) == 1, "the run after the gap stands alone"


async def test_a_removal_approved_three_days_late_is_three_days_late(tmp_path: Path) -> None:
    clock = Clock(START)
    world = World.make(tmp_path)
    world.write(Folder(period_days=5))
    key = make_key(tmp_path / "keys", "ana")
    (world.root / "approvers").write_text(f"ana {key.public_line}\n")
    review = {
        "daemon_mode": "review",
        "approvers": str(world.root / "approvers"),
        "plan_max_age_hours": 200,
    }
    made = daemon(world, clock, **review)
    await scheduled(made)  # proposes what is due now
    (proposal,) = sorted((world.state_dir / "plans").glob("*.json"))
    due = {item["due_at"] for item in json.loads(proposal.read_text())["items"]}
    assert due
    assert None not in due

    clock.now = START + 3 * DAY
    await scheduled(made)  # not approved yet: the proposal waits, its removals overdue
    status = read_status(made.settings, clock.now)
    (proposed,) = status["proposals"]
    assert (proposed["file"], proposed["approvals"], proposed["needed"]) == (proposal.name, 0, 1)
    waiting = status["policies"][0]
    assert waiting["overdue"] > 0
    assert waiting["reasons"] == {"approvals": waiting["overdue"]}
    done = invoke(world, "approve", str(proposal), "--key", str(key.key),
                  RETENTION_DAEMON_MODE="review",
                  RETENTION_APPROVERS=str(world.root / "approvers"))  # fmt: skip
    assert done.exit_code == 0, done.output
    await scheduled(made)  # applies the approved proposal

    rows = exported(world)
    made_late = [row for row in rows if row["event"] == "outcome" and row["outcome"] == "deleted"]
    assert made_late
    for row in made_late:
        lateness = timedelta(seconds=row["latenessSeconds"])
        assert 3 * DAY - timedelta(hours=1) <= lateness <= 3 * DAY + timedelta(hours=1)


async def test_a_held_session_is_never_overdue(tmp_path: Path) -> None:
    clock = Clock(START)
    world = World.make(tmp_path)
    group = world.group_of(world.organizer)
    held = Folder(period_days=5, holds=(Hold("LIT-1", group=group),))
    world.write(held)
    made = daemon(world, clock)
    for day in (0, 3, 9):
        clock.now = START + day * DAY
        await scheduled(made)
        (policy,) = read_status(made.settings, clock.now)["policies"]
        assert policy["overdue"] == 0, policy

    conn = connect_reader(world.state_dir / "audit.db")
    try:
        blocked = conn.execute(
            "SELECT count(*) FROM events WHERE event = 'hold_blocked'"
        ).fetchone()[0]
    finally:
        conn.close()
    assert blocked >= 3, "the hold kept due removals in every run"
    organizer_of = {s.session_id: s.organizer_key for s in world.account.iter_sessions()}
    groups = {world.group_of(organizer_of[session]) for session, _ in world.spy.deleted}
    assert group not in groups, "nothing held was removed"


class Outage(httpx.AsyncBaseTransport):
    """The API as the daemon reaches it, or, while `down`, an answer 503 to every request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.down = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503, json={"msg": "unavailable"})
        return await self.inner.handle_async_request(request)


async def test_a_scheduled_run_that_decides_nothing_keeps_what_was_overdue_as_not_run(
    tmp_path: Path,
) -> None:
    clock = Clock(START)
    world = World.make(tmp_path)
    world.write(Folder(period_days=5, cap=1))
    api = Outage(world.spy)
    made = Daemon(world.settings(call_deadline=1), Notifier(None), clock=clock, transport=api)
    made.load()
    for day in (0, 2):
        clock.now = START + day * DAY
        await scheduled(made)
    (before,) = read_status(made.settings, clock.now)["policies"]
    assert before["reasons"] == {"cap": before["overdue"]}
    assert before["overdue"] > 0

    api.down = True
    clock.now = START + 3 * DAY
    await scheduled(made)
    assert made.health.last_run_result == "failed"
    (after,) = read_status(made.settings, clock.now)["policies"]
    assert after["overdue"] == before["overdue"]
    assert after["oldest_due_at"] == before["oldest_due_at"]
    assert after["reasons"] == {"not_run": before["overdue"]}
    assert after["oldest_age_seconds"] == before["oldest_age_seconds"] + DAY.total_seconds()
    finished = [row for row in exported(world) if row["event"] == "run_finished"]
    assert finished[-1]["details"]["overdue"][Folder(period_days=5).rule_name]["reasons"] == {
        "not_run": before["overdue"]
    }


async def test_a_state_without_first_loads_finds_them_in_the_record(tmp_path: Path) -> None:
    clock = Clock(START)
    world = World.make(tmp_path)
    world.write(Folder(period_days=5, cap=1))
    made = daemon(world, clock)
    await scheduled(made)
    db = open_state_db(world.state_dir / "state.db")
    with db.atomic():
        db.execute("DELETE FROM policy_loads")  # as a state directory upgraded to this release
    db.close()

    clock.now = START + 2 * DAY
    await scheduled(made)
    (policy,) = read_status(made.settings, clock.now)["policies"]
    assert policy["overdue"] > 0
    assert policy["oldest_age_seconds"] == 2 * DAY.total_seconds(), "due since the first run"
