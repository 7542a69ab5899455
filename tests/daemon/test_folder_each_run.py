"""The daemon reads the policy folder at every run, in both modes, in-process on the sandbox.

A folder that does not load refuses the run (`invalid_policies`, unhealthy, an alert); a policy
edited after a proposal was approved refuses that proposal as `apply` would (`changed_plan`);
a hold added without SIGHUP is in force at the next run, and never proposed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from approvers import make_key
from receivers import Receiver
from routes import Folder, Hold, World, invoke

from retention.audit.store import connect_reader
from retention.service.daemon import Daemon
from retention.service.notify import Notifier

pytestmark = pytest.mark.anyio


def review_daemon(world: World, receiver: Receiver | None = None) -> Daemon:
    key = make_key(world.root / "keys", "ana")
    (world.root / "approvers").write_text(f"ana {key.public_line}\n")
    (world.root / "ana.key").write_text(str(key.key))
    options: dict[str, object] = {
        "daemon_mode": "review",
        "approvers": str(world.root / "approvers"),
    }
    if receiver is not None:
        options["notify"] = receiver.url
    made = Daemon(world.settings(**options), Notifier(None), transport=world.spy)
    made.load()
    return made


def approve_all(world: World) -> int:
    key = (world.root / "ana.key").read_text()
    proposals = sorted((world.state_dir / "plans").glob("*.json"))
    for proposal in proposals:
        done = invoke(
            world,
            "approve",
            str(proposal),
            "--key",
            key,
            RETENTION_DAEMON_MODE="review",
            RETENTION_APPROVERS=str(world.root / "approvers"),
        )
        assert done.exit_code == 0, done.output
    return len(proposals)


def refused_reasons(world: World) -> list[str]:
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        rows = conn.execute("SELECT data FROM events WHERE event = 'refused'").fetchall()
    finally:
        conn.close()
    return [json.loads(row[0])["reason"] for row in rows]


async def test_review_mode_refuses_a_run_whose_folder_does_not_load_and_says_so(
    tmp_path: Path, receiver: Receiver
) -> None:
    world = World.make(tmp_path)
    world.write(Folder())
    made = review_daemon(world, receiver)
    (world.policy_dir / "holds.yaml").write_text("holds:\n  - id: TYPO\n    reasn: r\n")

    await made.run_due(made.schedules[0].spec)

    assert made.health.last_run_result == "refused"
    assert made.health.last_reason == "invalid_policies"
    assert made.health.report()["status"] == "unhealthy"
    assert any("refused" in title for title in receiver.titles())
    assert not list((world.state_dir / "plans").glob("*.json")), "nothing proposed"
    assert world.spy.deleted == []

    (world.policy_dir / "holds.yaml").unlink()
    await made.run_due(made.schedules[0].spec)
    assert made.health.last_run_result == "ok", "a folder that loads again lifts the refusal"


async def test_a_proposal_approved_then_its_policy_edited_is_refused_as_changed(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder(period_days=1))
    made = review_daemon(world)
    await made.run_due(made.schedules[0].spec)
    assert approve_all(world) == 1

    world.write(Folder(period_days=400))  # edited, no SIGHUP
    await made.run_due(made.schedules[0].spec)

    assert world.spy.deleted == [], "nothing removed under the policy the proposal was made on"
    assert "changed_plan" in refused_reasons(world)
    assert list((world.state_dir / "plans" / "refused").glob("*.json")), "set aside"


async def test_a_hold_added_without_reload_is_never_proposed_and_holds_an_approved_proposal(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder(period_days=1))
    made = review_daemon(world)
    await made.run_due(made.schedules[0].spec)
    assert approve_all(world) == 1

    world.write(Folder(period_days=1, holds=(Hold("ALL"),)))  # no SIGHUP
    await made.run_due(made.schedules[0].spec)

    assert world.spy.deleted == [], "the approved proposal's items are held when sent"
    assert not list((world.state_dir / "plans").glob("*.json")), "no new proposal: all held"
