"""Review mode as a real daemon against the sandbox: scheduled runs propose, approved proposals
are applied through `apply`, expired ones are recorded and set aside, nothing else is removed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from approvers import audit_events, make_key, write_signers
from receivers import Receiver

from retention.sandbox.policies import RECORDINGS_30D

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 90.0


def wait_until(found: Callable[[], Any], what: str, proc: Any) -> Any:
    """The first truthy answer of `found`, polled until WAIT_SECONDS pass."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        answer = found()
        if answer:
            return answer
        assert proc.proc.poll() is None, proc.output()
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen; output:\n{proc.output()}")


def in_review_mode(dep: Any, tmp_path: Path, **settings: str) -> Any:
    ana = make_key(tmp_path / "keys", "ana")
    signers = write_signers(tmp_path / "allowed_signers", ana)
    dep.env.update(
        {
            "RETENTION_APPROVERS": str(signers),
            "RETENTION_APPROVALS_REQUIRED": "1",
            "RETENTION_DAEMON_MODE": "review",
            **settings,
        }
    )
    return ana


def test_review_mode_proposes_then_applies_the_proposal_once_approved(
    deployment: Any, daemon: Any, notify_socket: Any, tmp_path: Path
) -> None:
    dep = deployment(RECORDINGS_30D)
    receiver = Receiver()
    ana = in_review_mode(dep, tmp_path, RETENTION_NOTIFY=receiver.url)
    plans = dep.state_dir / "plans"
    proc = daemon(dep)
    notify_socket.wait_for("READY")

    [proposal] = wait_until(lambda: sorted(plans.glob("*.json")), "a proposal", proc)
    items = json.loads(proposal.read_text())["items"]
    assert items
    proc.wait_for_run(after=len(proc.events()))
    assert sorted(plans.glob("*.json")) == [proposal], "one proposal waits; none is added"
    listed = json.loads(dep.cli("plans", "--format", "json", check=True).stdout)
    assert [
        (Path(r["file"]).name, r["approvals"]["valid"], r["approvals"]["needed"]) for r in listed
    ] == [(proposal.name, 0, 1)]
    table = dep.cli("plans", check=True).stdout
    assert proposal.name in table
    assert "0/1" in table
    assert dep.deletes() == [], "a proposal removes nothing"
    awaiting = [t for t in receiver.titles() if "awaits approval (0 of 1)" in t]
    assert len(awaiting) == 1, "one alert while the proposal waits, not one per run"
    [proposed] = audit_events(dep, "plan_proposed")
    assert proposed["file"] == proposal.name
    assert proposed["items"] == len(items)

    approved = dep.cli("approve", str(proposal), "--key", str(ana.key), "--comment", "ok")
    assert approved.returncode == 0, approved.stderr

    applied = plans / "applied" / proposal.name
    wait_until(applied.exists, "the approved proposal's apply", proc)
    assert len(dep.deletes()) == len(items)
    assert Path(f"{applied}.approvals").exists()
    [event] = audit_events(dep, "plan_approved")
    assert event["plan_hash"] == proposed["plan_hash"]
    assert [a["principal"] for a in event["approvers"]] == ["ana"]
    assert event["approvers"][0]["comment"] == "ok"
    wait_until(
        lambda: any("resolved: a plan awaits approval" in t for t in receiver.titles()),
        "the awaiting alert's resolution",
        proc,
    )
    assert proc.stop() == 0
    receiver.close()


def test_an_expired_proposal_is_recorded_and_never_applied(
    deployment: Any, daemon: Any, notify_socket: Any, tmp_path: Path
) -> None:
    dep = deployment(RECORDINGS_30D)
    in_review_mode(dep, tmp_path, RETENTION_PLAN_MAX_AGE_HOURS="0.0005")
    plans = dep.state_dir / "plans"
    proc = daemon(dep)
    notify_socket.wait_for("READY")

    [first] = wait_until(lambda: sorted(plans.glob("*.json")), "a proposal", proc)
    wait_until((plans / "expired" / first.name).exists, "the proposal's expiry", proc)

    expired = audit_events(dep, "plan_expired")
    assert expired[0]["file"] == first.name
    assert expired[0]["approvals"] == 0
    assert dep.deletes() == []
    assert proc.stop() == 0


def test_apply_mode_with_approvals_required_is_a_settings_error(
    deployment: Any, daemon: Any, tmp_path: Path
) -> None:
    dep = deployment(RECORDINGS_30D)
    in_review_mode(dep, tmp_path, RETENTION_DAEMON_MODE="apply")
    proc = daemon(dep)

    assert proc.proc.wait(timeout=60) == 2
    assert "RETENTION_DAEMON_MODE=review" in proc.output()
    assert dep.deletes() == []
