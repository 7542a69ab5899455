"""The same account, policies and holds give the same removals on every route.

Each cell is a scenario (a change between the first run and the route) on a route (its real
entry point, in-process on the sandbox). What the route removed, or would remove, and what it
blocks agree with `routes.reference`, the rules decided apart from the product's code on the
account as it is when the route runs. Cells that cannot apply are listed in `NOT_APPLICABLE`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from approvers import make_key
from routes import (
    Change,
    Expected,
    Folder,
    Hold,
    Scenario,
    World,
    cases_yaml,
    invoke,
    kept_by_baseline,
    record_notices,
    reference,
)

from retention.audit.log import AuditLog
from retention.engine.inputs import explainer_for
from retention.engine.inventory import session_record
from retention.engine.planfile import LoadedPlan, load_plan_file
from retention.errors import RetentionError
from retention.policy import PolicyError, load_policy_set
from retention.service import pipeline, record
from retention.service.context import RunContext
from retention.service.daemon import Daemon
from retention.service.notify import Notifier
from retention.service.preview import preview
from retention.service.statedir import read_only

pytestmark = pytest.mark.anyio
FIRST = Folder(period_days=365)
OWN = "{own}"  # the chosen organizer's own group, filled in per world
OTHER = "{other}"  # a group it is not in


def scenarios() -> list[Scenario]:
    return [
        Scenario("moved into a held group", FIRST, Folder(holds=(Hold("H", group=OTHER),)),
                 Change(move_to=OTHER)),
        Scenario("moved out of a held group",
                 Folder(period_days=365, holds=(Hold("H", group=OWN),)),
                 Folder(holds=(Hold("H", group=OWN),)), Change(move_to=OTHER)),
        Scenario("email changed, a hold names the new one", FIRST,
                 Folder(holds=(Hold("H", email="moved@example.com"),)),
                 Change(email="moved@example.com")),
        Scenario("moved into a group with a retain rule", FIRST,
                 Folder(retain=((OTHER, 3650),)), Change(move_to=OTHER)),
        Scenario("a policy over its cap", FIRST, Folder(cap=2)),
        Scenario("a scope naming a group never seen", FIRST, Folder(scope=(OWN, "Nowhere"))),
        Scenario("notice required, not sent", FIRST, Folder(notice=True)),
        Scenario("notice required, sent in time", FIRST, Folder(notice=True), noticed_days_ago=30),
        Scenario("a hold added", FIRST, Folder(holds=(Hold("H", group=OWN),))),
        Scenario("a hold lifted", Folder(period_days=365, holds=(Hold("H"),)), Folder()),
        Scenario("a policy edited without reload", Folder(period_days=365), Folder(period_days=8),
                 stale_daemon=True),
        Scenario("a folder that does not load", FIRST, Folder(broken=True)),
    ]  # fmt: skip


ROUTES = (
    "plan",
    "plan_offline",
    "run",
    "plan_apply",
    "daemon_apply",
    "daemon_review",
    "reconcile",
    "explain",
    "test",
)
NOT_APPLICABLE = {
    ("moved out of a held group", "test"): "a policy test describes one session's facts; what "
    "a hold kept is the state database's, which `retention test` does not read",
}


def placed(world: World, folder: Folder) -> Folder:
    """The folder with the world's group names in place of OWN and OTHER."""
    names = {OWN: world.group_of(world.organizer), OTHER: world.other_group()}

    def name(value: str | None) -> str | None:
        return None if value is None else names.get(value, value)

    return Folder(
        period_days=folder.period_days,
        holds=tuple(Hold(h.id, group=name(h.group), email=h.email) for h in folder.holds),
        retain=tuple((str(name(group)), days) for group, days in folder.retain),
        cap=folder.cap,
        notice=folder.notice,
        scope=tuple(str(name(group)) for group in folder.scope),
        broken=folder.broken,
    )


def in_world(world: World, scenario: Scenario) -> Scenario:
    other = world.other_group()
    change = scenario.change
    return Scenario(
        scenario.name,
        placed(world, scenario.before),
        placed(world, scenario.after),
        Change(move_to=other if change.move_to else None, email=change.email),
        scenario.noticed_days_ago,
        scenario.stale_daemon,
    )


@dataclass
class Seen:
    """What a route did or said: removals made, would make, blocked, verdicts, refused."""

    removed: set[int] | None = None
    planned: set[int] | None = None
    blocked: set[int] | None = None
    verdicts: dict[int, str] | None = None
    refused: bool = False
    candidates: set[int] | None = None  # a plan made before the change bounds what is sent


def context(world: World, **changes: object) -> RunContext:
    return RunContext(world.settings(**changes), transport=world.spy)


# The state directory each first folder's run left (per worker): the first run is the same for
# every route of a scenario, so it is made once and copied. The tokens stay behind: each world
# serves a new sandbox, which knows only its first refresh token.
_FIRST_RUNS: dict[Folder, Path] = {}
_TOKENS = shutil.ignore_patterns("access_token.json", "refresh_token.json", "retention.lock")


async def first_run(world: World, scenario: Scenario, kept: Path) -> None:
    world.write(scenario.before)
    made = _FIRST_RUNS.get(scenario.before)
    if made is not None:
        shutil.copytree(made, world.state_dir, ignore=_TOKENS)
        return
    await pipeline.run(context(world), trigger="test", confirm=None, approved_by="test")
    assert not world.removed(), "the first folder removes nothing: every route starts alike"
    copy = kept / f"first-{len(_FIRST_RUNS)}"
    shutil.copytree(world.state_dir, copy, ignore=_TOKENS)
    _FIRST_RUNS[scenario.before] = copy


async def guarded(job: Callable[[], Awaitable[Seen]]) -> Seen:
    try:
        return await job()
    except (PolicyError, RetentionError) as exc:
        if isinstance(exc, PolicyError) or exc.reason == "invalid_policies":
            return Seen(removed=set(), refused=True)
        if exc.reason in ("cap", "unknown_name"):
            raise  # handled by the route: the refusal is recorded, the rest is done
        raise


async def route_plan(world: World, _scenario: Scenario, *, offline: bool = False) -> Seen:
    if offline:
        await preview(context(world), as_of=None, selected=None, record=False)
    plan = await preview(context(world), as_of=None, selected=None, record=False, offline=offline)
    return Seen(
        planned={item.session_id for item in plan.items},
        blocked={int(entry["sessionId"]) for entry in plan.blocked},
    )


async def route_run(world: World, _scenario: Scenario) -> Seen:
    try:
        result = await pipeline.run(context(world), trigger="test", confirm=None, approved_by="t")
    except RetentionError as exc:
        if exc.reason not in ("cap", "unknown_name"):
            raise
        return Seen(removed=world.removed())
    assert result.plan is not None
    return Seen(
        removed=world.removed(),
        blocked={int(entry["sessionId"]) for entry in result.plan.blocked},
    )


async def route_apply(world: World, scenario: Scenario, plan_file: Path) -> Seen:
    loaded = load_plan_file(plan_file)
    try:
        await pipeline.apply(context(world), loaded, confirm=None, approved_by="t")
    except RetentionError as exc:
        if exc.reason not in ("cap", "unknown_name"):
            raise
    return Seen(removed=world.removed(), candidates={item.session_id for item in loaded.items})


def daemon(world: World, **changes: object) -> Daemon:
    made = Daemon(world.settings(**changes), Notifier(None), transport=world.spy)
    made.load()
    return made


async def route_daemon(world: World, made: Daemon) -> Seen:
    await made.run_due(made.schedules[0].spec)
    refused = made.health.last_run_result == "refused"
    if made.health.last_reason == "invalid_policies":
        return Seen(removed=world.removed(), refused=True)
    assert made.health.last_run_result in ("ok", "refused"), made.health.last_error
    del refused
    return Seen(removed=world.removed())


async def route_review(world: World, made: Daemon, approver: Path) -> Seen:
    await made.run_due(made.schedules[0].spec)
    if made.health.last_reason == "invalid_policies":
        return Seen(removed=world.removed(), refused=True)
    proposals = sorted((world.state_dir / "plans").glob("*.json"))
    for proposal in proposals:
        done = invoke(world, "approve", str(proposal), "--key", str(approver),
                      RETENTION_DAEMON_MODE="review",
                      RETENTION_APPROVERS=str(world.root / "approvers"))  # fmt: skip
        assert done.exit_code == 0, done.output
    await made.run_due(made.schedules[0].spec)
    assert made.health.last_run_result in ("ok", "refused"), made.health.last_error
    assert not list((world.state_dir / "plans").glob("*.json")), "applied and set aside"
    return Seen(removed=world.removed())


async def route_reconcile(world: World, plan_file: Path) -> Seen:
    """Intents a crash left pending (the plan's items), reconciled at the daemon's start-up."""
    loaded = load_plan_file(plan_file)
    settings = world.settings()
    with record.open_audit(settings, lambda: datetime.now(UTC)) as audit:
        crashed(audit, loaded)
    try:
        await pipeline.start_up(context(world))
    except PolicyError:
        return Seen(removed=world.removed(), refused=True)
    return Seen(removed=world.removed(), candidates={item.session_id for item in loaded.items})


def crashed(audit: AuditLog, loaded: LoadedPlan) -> None:
    run_id = record.new_run_id(datetime.now(UTC))
    audit.run_started(run_id=run_id, trigger="apply", settings_summary={})
    for item in loaded.items:
        audit.intent(
            run_id=run_id,
            plan_id=loaded.plan_id,
            policy=item.policy,
            policy_hash=item.policy_hash,
            action=item.action,
            organizer_key=item.organizer_key,
            meeting_id=item.meeting_id,
            session_id=item.session_id,
            subject=None,
            start_time=item.start_time,
            end_time=item.end_time,
            recording_ids=[item.recording_id] if item.recording_id else [],
            recording_bytes=item.recording_bytes,
            attendee_count=item.attendees,
        )


async def route_explain(world: World) -> Seen:
    """Every session's verdict from the explainer `retention explain` builds (policy folder,
    inventory, admission over the whole inventory), and the command itself, through the CLI,
    for each session of the organizer the scenarios change: both must agree."""
    try:
        await preview(context(world), as_of=None, selected=None, record=False)
    except PolicyError:
        return Seen(refused=True)
    settings = world.settings()
    now = datetime.now(UTC)
    with read_only(settings, "explain from") as db:
        explainer, _refused = explainer_for(
            db, load_policy_set([settings.policy_dir]), settings, now, now
        )
        verdicts = {}
        for session in world.listed():
            record = session_record(db, session.session_id)
            assert record is not None, session.session_id
            actions = {entry.action: entry.verdict for entry in explainer(record).actions}
            verdicts[session.session_id] = actions["delete_recordings"]
    for session in world.listed():
        if session.organizer_key != world.organizer:
            continue
        shown = invoke(world, "explain", str(session.session_id), "--format", "json")
        assert shown.exit_code == 0, shown.output
        found = json.loads(shown.stdout)
        actions = {entry["action"]: entry["verdict"] for entry in found["actions"]}
        assert actions["delete_recordings"] == verdicts[session.session_id], session.session_id
    return Seen(verdicts=verdicts)


def route_test(world: World, scenario: Scenario, expected: Expected) -> Seen:
    folder = world.policy_dir / "tests"
    folder.mkdir(exist_ok=True)
    (folder / "cases.yaml").write_text(cases_yaml(world, scenario, expected, datetime.now(UTC)))
    result = invoke(world, "test", str(world.policy_dir))
    if scenario.after.broken:
        assert result.exit_code == 2, result.output
        return Seen(refused=True)
    assert result.exit_code == 0, result.output
    return Seen(verdicts=dict(expected.verdicts))


def cells() -> list[object]:
    """Every scenario on every route, but the cells that cannot apply (NOT_APPLICABLE)."""
    return [
        pytest.param(template, route, id=f"{template.name.replace(' ', '-')}-{route}")
        for template in scenarios()
        for route in ROUTES
        if (template.name, route) not in NOT_APPLICABLE
    ]


def test_the_cells_that_cannot_apply_are_listed_with_their_reason() -> None:
    names = {template.name for template in scenarios()}
    assert len(names) >= 12
    for (scenario, route), reason in NOT_APPLICABLE.items():
        assert scenario in names
        assert route in ROUTES
        assert len(reason) > 20
    assert len(cells()) == len(names) * len(ROUTES) - len(NOT_APPLICABLE)


@pytest.mark.parametrize(("template", "route_name"), cells())
async def test_every_route_removes_what_the_rules_call_for_on_current_facts(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, template: Scenario, route_name: str
) -> None:
    world = World.make(tmp_path)
    scenario = in_world(world, template)
    await first_run(world, scenario, tmp_path_factory.getbasetemp())
    kept = kept_by_baseline(world, scenario)
    approver = None
    made = None
    if route_name == "daemon_review":
        key = make_key(tmp_path / "keys", "ana")
        (world.root / "approvers").write_text(f"ana {key.public_line}\n")
        approver = key.key
        made = daemon(world, daemon_mode="review", approvers=str(world.root / "approvers"))
    elif route_name == "daemon_apply":
        made = daemon(world)
    if scenario.change.email is not None:
        world.apply_change(scenario.change)  # a hold can only name an address the account has
    world.write(scenario.after)
    if scenario.noticed_days_ago is not None:
        record_notices(world, scenario.noticed_days_ago)
    plan_file = None
    if route_name in ("plan_apply", "reconcile") and not scenario.after.broken:
        plan = await preview(context(world), as_of=None, selected=None, record=True)
        plan_file = tmp_path / "plan.json"
        plan_file.write_text(json.dumps(plan.document()))
    world.apply_change(scenario.change)
    world.spy.deleted.clear()

    expected = reference(world, scenario, kept, datetime.now(UTC))
    seen = await run_route(route_name, world, scenario, expected, plan_file, made, approver)

    if scenario.after.broken:
        assert seen.refused, "a folder that does not load refuses every route"
        assert not world.removed()
        return
    due = expected.due
    if seen.removed is not None:
        bound = seen.candidates if seen.candidates is not None else due
        assert seen.removed == due & bound, (sorted(seen.removed), sorted(due & bound))
    if seen.planned is not None:
        assert seen.planned == due
    if seen.blocked is not None:
        assert seen.blocked == expected.blocked
    if seen.verdicts is not None:
        assert seen.verdicts == dict(expected.verdicts)


async def run_route(
    name: str,
    world: World,
    scenario: Scenario,
    expected: Expected,
    plan_file: Path | None,
    made: Daemon | None,
    approver: Path | None,
) -> Seen:
    broken = scenario.after.broken
    if name in ("plan", "plan_offline"):
        if broken:
            with pytest.raises(PolicyError):
                await route_plan(world, scenario)
            return Seen(refused=True)
        return await route_plan(world, scenario, offline=name == "plan_offline")
    if name == "run":
        if broken:
            with pytest.raises(PolicyError):
                await route_run(world, scenario)
            return Seen(refused=True, removed=world.removed())
        return await route_run(world, scenario)
    if name == "plan_apply":
        if plan_file is None:
            return Seen(refused=True)
        return await route_apply(world, scenario, plan_file)
    if name == "daemon_apply":
        assert made is not None
        return await route_daemon(world, made)
    if name == "daemon_review":
        assert made is not None
        assert approver is not None
        return await route_review(world, made, approver)
    if name == "reconcile":
        if plan_file is None:
            return Seen(refused=True)
        return await route_reconcile(world, plan_file)
    if name == "explain":
        return await route_explain(world)
    return route_test(world, scenario, expected)
