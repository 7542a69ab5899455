"""Review mode, in-process on the sandbox: scheduled runs propose, approved proposals are applied
through `apply`, expired ones are recorded and set aside, nothing else is removed.

The daemon is started as `serve` starts it (tests/indaemon.py) and its schedule fired on the
test's clock; `retention plans` and `retention approve` run in this process through the CLI.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from approvers import Approver, make_key
from indaemon import START, Clock, cli, daemon, data, fires, started
from receivers import Receiver
from routes import Folder, World, invoke

from retention.errors import SettingsError
from retention.service.daemon import Daemon

pytestmark = pytest.mark.anyio


def in_review_mode(world: World) -> tuple[Approver, dict[str, str]]:
    """Ana as the one approver needed; the settings as the CLI's environment."""
    ana = make_key(world.root / "keys", "ana")
    (world.root / "approvers").write_text(f"ana {ana.public_line}\n")
    env = {
        "RETENTION_APPROVERS": str(world.root / "approvers"),
        "RETENTION_APPROVALS_REQUIRED": "1",
        "RETENTION_DAEMON_MODE": "review",
    }
    return ana, env


def reviewing(world: World, clock: Clock, **settings: object) -> Daemon:
    return daemon(
        world,
        clock,
        daemon_mode="review",
        approvers=str(world.root / "approvers"),
        approvals_required=1,
        **settings,
    )


async def test_review_mode_proposes_then_applies_the_proposal_once_approved(
    tmp_path: Path, receiver: Receiver
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    ana, env = in_review_mode(world)
    clock = Clock()
    made = reviewing(world, clock, notify=receiver.url, default_schedule="@every 2s")
    plans = world.state_dir / "plans"
    (spec,) = (schedule.spec for schedule in made.schedules)
    moments = iter(fires(made.schedules, START, START + timedelta(seconds=6)))

    async def scheduled() -> None:
        clock.now, _schedule = next(moments)
        await made.run_due(spec)

    async with started(made):
        await scheduled()
        [proposal] = sorted(plans.glob("*.json"))
        items = json.loads(proposal.read_text())["items"]
        assert items
        await scheduled()
        assert sorted(plans.glob("*.json")) == [proposal], "one proposal waits; none is added"
        listed = invoke(world, "plans", "--format", "json", **env)
        assert listed.exit_code == 0, listed.output
        assert [
            (Path(r["file"]).name, r["approvals"]["valid"], r["approvals"]["needed"])
            for r in json.loads(listed.stdout)
        ] == [(proposal.name, 0, 1)]
        table = invoke(world, "plans", **env)
        assert table.exit_code == 0, table.output
        assert proposal.name in table.stdout
        assert "0/1" in table.stdout
        assert world.spy.deleted == [], "a proposal removes nothing"
        awaiting = [t for t in receiver.titles() if "awaits approval (0 of 1)" in t]
        assert len(awaiting) == 1, "one alert while the proposal waits, not one per run"
        [proposed] = data(world, "plan_proposed")
        assert proposed["file"] == proposal.name
        assert proposed["items"] == len(items)

        approved = invoke(
            world, "approve", str(proposal), "--key", str(ana.key), "--comment", "ok", **env
        )
        assert approved.exit_code == 0, approved.output

        await scheduled()
        applied = plans / "applied" / proposal.name
        assert applied.exists(), "the approved proposal is applied by the next run"
        assert len(world.spy.deleted) == len(items)
        assert Path(f"{applied}.approvals").exists()
        [event] = data(world, "plan_approved")
        assert event["plan_hash"] == proposed["plan_hash"]
        assert [a["principal"] for a in event["approvers"]] == ["ana"]
        assert event["approvers"][0]["comment"] == "ok"
        assert any("resolved: a plan awaits approval" in t for t in receiver.titles())


async def test_an_expired_proposal_is_recorded_and_never_applied(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    in_review_mode(world)
    clock = Clock()
    # Daily at 03:00, a proposal lives 12 hours: the next day's run finds it expired.
    made = reviewing(world, clock, plan_max_age_hours=12, default_schedule="0 3 * * *")
    plans = world.state_dir / "plans"
    (spec,) = (schedule.spec for schedule in made.schedules)
    days = [moment for moment, _ in fires(made.schedules, START, START + timedelta(days=1))]
    assert days == [START, START + timedelta(days=1)], "the clock starts at 03:00"

    async with started(made):
        clock.now = days[0]
        await made.run_due(spec)
        [first] = sorted(plans.glob("*.json"))
        clock.now = days[1]
        await made.run_due(spec)

    assert (plans / "expired" / first.name).exists()
    expired = data(world, "plan_expired")
    assert expired[0]["file"] == first.name
    assert expired[0]["approvals"] == 0
    assert world.spy.deleted == []


def test_apply_mode_with_approvals_required_is_a_settings_error(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    _ana, env = in_review_mode(world)
    settings = {**env, "RETENTION_DAEMON_MODE": "apply"}

    with pytest.raises(SettingsError) as refused:
        daemon(world, Clock(), daemon_mode="apply", approvers=env["RETENTION_APPROVERS"],
               approvals_required=1)  # fmt: skip
    assert "RETENTION_DAEMON_MODE=review" in f"{refused.value} {refused.value.hint}"
    assert world.spy.requests == [], "nothing is scanned, nothing removed"

    # `retention daemon` itself, in this process: it stops before it serves anything.
    stopped = cli(world, "daemon", RETENTION_METRICS_ADDRESS="127.0.0.1:0", **settings)
    assert stopped.returncode == 2, stopped.stdout + stopped.stderr
    assert "RETENTION_DAEMON_MODE=review" in stopped.stdout + stopped.stderr
