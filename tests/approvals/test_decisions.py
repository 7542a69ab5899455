"""Approving a proposal with items postponed: the decision document, its signatures, its effect.

In-process on the sandbox: a review-mode daemon proposes, two approvers sign the same decision
with `retention approve --decision`, the daemon applies it; the postponed item is not removed,
is blocked `by: review:PRINCIPAL` on every route, and the record says who postponed it and why.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from approvers import make_key
from routes import Folder, World, invoke

from retention.approvals.decisions import Decision, Exclusion, decision_of, read_decision
from retention.audit.store import connect_reader
from retention.engine.admission import admit
from retention.engine.inventory import iter_sessions
from retention.policy import load_policy_set
from retention.service.daemon import Daemon
from retention.service.facts import admission_for
from retention.service.notify import Notifier
from retention.service.statedir import reader

pytestmark = pytest.mark.anyio


def test_a_whole_approval_signs_the_plan_hash_itself() -> None:
    assert Decision("ab" * 32).hash == "ab" * 32


def test_a_decision_with_exclusions_signs_the_sha256_of_its_canonical_document() -> None:
    later = Exclusion("9", "delete_recordings", "2027-02-01", "matter 12", "bob@example.com")
    first = Exclusion("10", "delete_session", "2027-01-15", "kept für Legal", "ana@example.com")
    decision = decision_of("cd" * 32, [later, first, later])
    document = {
        "exclusions": [
            {
                "action": "delete_session",
                "by": "ana@example.com",
                "reason": "kept für Legal",
                "sessionId": "10",
                "until": "2027-01-15",
            },
            {
                "action": "delete_recordings",
                "by": "bob@example.com",
                "reason": "matter 12",
                "sessionId": "9",
                "until": "2027-02-01",
            },
        ],
        "plan_hash": "cd" * 32,
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert decision.hash == hashlib.sha256(text.encode()).hexdigest()


def review_daemon(world: World, names: tuple[str, ...]) -> Daemon:
    lines = []
    for name in names:
        key = make_key(world.root / "keys", name)
        lines.append(f"{name}@example.com {key.public_line}")
    (world.root / "approvers").write_text("\n".join(lines) + "\n")
    settings = world.settings(
        daemon_mode="review", approvers=str(world.root / "approvers"), approvals_required=2
    )
    made = Daemon(settings, Notifier(None), transport=world.spy)
    made.load()
    return made


def approve(world: World, proposal: Path, name: str, *extra: str) -> Any:
    done = invoke(
        world,
        "approve",
        str(proposal),
        "--key",
        str(world.root / "keys" / name),
        *extra,
        RETENTION_DAEMON_MODE="review",
        RETENTION_APPROVERS=str(world.root / "approvers"),
        RETENTION_APPROVALS_REQUIRED="2",
    )
    assert done.exit_code == 0, done.output
    return done


def events(world: World, kind: str) -> list[dict[str, Any]]:
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        rows = conn.execute("SELECT data FROM events WHERE event = ?", [kind]).fetchall()
    finally:
        conn.close()
    return [json.loads(row[0]) for row in rows]


def write_decision(world: World, proposal: Path) -> tuple[Path, dict[str, Any]]:
    plan = json.loads(proposal.read_text())
    item = plan["items"][0]
    exclusion = Exclusion(
        item["sessionId"], item["action"], "2099-01-01", "kept for the audit", "ana@example.com"
    )
    decision = decision_of(plan["plan_hash"], [exclusion])
    path = world.root / "decision.json"
    path.write_text(json.dumps(decision.as_json()))
    return path, item


async def test_two_approvers_sign_one_decision_and_its_postponed_item_stays(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.write(Folder(period_days=1))
    made = review_daemon(world, ("ana", "bob"))
    await made.run_due(made.schedules[0].spec)
    (proposal,) = sorted((world.state_dir / "plans").glob("*.json"))
    decision_file, item = write_decision(world, proposal)
    assert read_decision(decision_file).exclusions[0].session_id == item["sessionId"]

    signed = approve(world, proposal, "ana", "--decision", str(decision_file))
    assert "1 item(s) postponed" in signed.output
    approve(world, proposal, "bob", "--decision", str(decision_file))
    await made.run_due(made.schedules[0].spec)

    removed = {str(session) for session, _action in world.spy.deleted}
    planned = len(
        json.loads((world.state_dir / "plans" / "applied" / proposal.name).read_text())["items"]
    )
    assert item["sessionId"] not in removed
    assert len(world.spy.deleted) == planned - 1, "every other item was removed"
    (approved,) = [e for e in events(world, "plan_approved") if e.get("approvers")]
    assert sorted(a["principal"] for a in approved["approvers"]) == [
        "ana@example.com",
        "bob@example.com",
    ]
    assert approved["exclusions"] == [
        {
            "sessionId": item["sessionId"],
            "action": item["action"],
            "until": "2099-01-01",
            "reason": "kept for the audit",
            "by": "ana@example.com",
        }
    ]
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        outcome = conn.execute(
            "SELECT outcome, data FROM events WHERE event = 'outcome' "
            "AND CAST(session_id AS TEXT) = ?",
            [item["sessionId"]],
        ).fetchone()
    finally:
        conn.close()
    assert outcome[0] == "skipped_hold"
    assert "review:ana@example.com" in outcome[1]

    explained = invoke(world, "explain", item["sessionId"], "--format", "json")
    assert explained.exit_code == 0, explained.output
    verdicts = {v["action"]: v for v in json.loads(explained.output)["actions"]}
    assert verdicts[item["action"]]["verdict"] == "held"
    assert verdicts[item["action"]]["by"] == "review:ana@example.com"

    # Every route decides through the one admission step: it blocks the item too.
    db = reader(world.state_dir / "state.db")
    admission = admission_for(db, load_policy_set([world.policy_dir]), made.settings, made.clock())
    plan = admit(lambda: iter_sessions(db), admission, plan_id="p", created_at=made.clock())
    blocked = [b for b in plan.blocked if b["sessionId"] == item["sessionId"]]
    assert [b["by"] for b in blocked] == ["review:ana@example.com"]
    db.close()


async def test_approvals_of_different_decisions_do_not_add_up(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    world.write(Folder(period_days=1))
    made = review_daemon(world, ("ana", "bob"))
    await made.run_due(made.schedules[0].spec)
    (proposal,) = sorted((world.state_dir / "plans").glob("*.json"))
    decision_file, _item = write_decision(world, proposal)

    approve(world, proposal, "ana")
    done = approve(world, proposal, "bob", "--decision", str(decision_file))
    assert "1 of 2 approvals" in done.output
    await made.run_due(made.schedules[0].spec)

    assert world.spy.deleted == [], "no decision has two approvals"


def test_a_decision_about_another_plan_is_refused(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    plan = world.root / "plan.json"
    plan.write_text("{}")
    decision = world.root / "decision.json"
    decision.write_text(json.dumps(Decision("00" * 32).as_json()))
    key = make_key(world.root / "keys", "ana")
    done = invoke(world, "approve", str(plan), "--key", str(key.key), "--decision", str(decision))
    assert done.exit_code != 0
