"""Apply against the sandbox with RETENTION_APPROVALS_REQUIRED=2: refused with one approval,
applied with two distinct approvers; the record names each of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from approvers import Approver, audit_events, ssh_keygen_sign, write_signers
from support import Deployment

TwoPersonRule = tuple[Deployment, Approver, Approver]


@pytest.fixture
def two_person_rule(
    deployment: Callable[..., Deployment], approver: Callable[[str], Approver], tmp_path: Path
) -> TwoPersonRule:
    """The service requiring two approvals, with ana and bob in its allowed signers."""
    ana, bob = approver("ana"), approver("bob")
    signers = write_signers(tmp_path / "allowed_signers", ana, bob)
    dep = deployment(RETENTION_APPROVERS=str(signers), RETENTION_APPROVALS_REQUIRED="2")
    return dep, ana, bob


Planned = tuple[Deployment, Approver, Approver, Path]


@pytest.fixture
def planned(two_person_rule: TwoPersonRule) -> Planned:
    """The two-person rule and today's plan, saved to plan.json."""
    dep, ana, bob = two_person_rule
    return dep, ana, bob, dep.saved_plan()


def approve(dep: Deployment, plan: Path, who: Approver, comment: str = "") -> Any:
    return dep.cli("approve", str(plan), "--key", str(who.key), "--comment", comment)


def approvals_refusals(dep: Deployment) -> list[dict[str, Any]]:
    return [e for e in audit_events(dep, "refused") if e["reason"] == "approvals"]


@pytest.mark.e2e
def test_apply_refuses_one_approval_and_proceeds_with_two_distinct_approvers(
    two_person_rule: TwoPersonRule,
) -> None:
    """The end-to-end case: plan, approve, apply and verify, each a real `retention` process."""
    dep, ana, bob = two_person_rule
    dep.processes = True
    plan = dep.saved_plan()
    items = json.loads(plan.read_text())["items"]
    assert items

    first = approve(dep, plan, ana, "reviewed the recordings list")
    assert first.returncode == 0, first.stderr
    assert "1 of 2 approvals (ana)" in first.stdout
    again = approve(dep, plan, ana, "twice")
    assert again.returncode == 0, again.stderr

    refused = dep.cli("apply", str(plan), "--yes")
    assert refused.returncode == 3, refused.stderr
    assert "1 of the 2 approvals" in refused.stderr
    assert "reason: approvals" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert dep.deletes() == [], "nothing is removed without the approvals"
    [event] = approvals_refusals(dep)
    assert (event["details"]["have"], event["details"]["need"]) == (1, 2)
    assert event["details"]["principals"] == ["ana"], "the same principal twice counts once"

    assert approve(dep, plan, bob, "second pair of eyes").returncode == 0
    applied = dep.cli("apply", str(plan), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert len(dep.deletes()) == len(items)

    [approved] = audit_events(dep, "plan_approved")
    approvers = approved["approvers"]
    assert [a["principal"] for a in approvers] == ["ana", "bob"]
    assert [a["fingerprint"] for a in approvers] == [ana.fingerprint, bob.fingerprint]
    assert [a["comment"] for a in approvers] == [
        "reviewed the recordings list",
        "second pair of eyes",
    ]
    assert all(a["time"] and "signature" not in a for a in approvers)
    assert approved["approved_by"].endswith("(--yes)")
    verified = dep.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_signature_over_another_plans_hash_does_not_count(planned: Planned) -> None:
    dep, ana, bob, plan = planned
    other = dep.saved_plan("other.json")
    assert approve(dep, plan, ana).returncode == 0
    assert approve(dep, other, bob).returncode == 0
    # Bob's approval of the other plan, copied beside this one: it is not this plan's.
    with Path(f"{plan}.approvals").open("a") as approvals:
        approvals.write(Path(f"{other}.approvals").read_text())

    refused = dep.cli("apply", str(plan), "--yes")

    assert refused.returncode == 3, refused.stderr
    assert "1 of the 2 approvals" in refused.stderr
    assert "does not verify over this plan's hash" in refused.stderr
    assert dep.deletes() == []


def test_an_approver_the_allowed_signers_do_not_name_does_not_count(
    planned: Planned, approver: Callable[[str], Approver]
) -> None:
    dep, _ana, _bob, plan = planned
    eve = approver("eve")

    unnamed = approve(dep, plan, eve)
    assert unnamed.returncode == 2
    assert f"YOUR-NAME {eve.public_line}" in unnamed.stderr, "the hint gives the line to add"
    posing = dep.cli("approve", str(plan), "--key", str(eve.key), "--principal", "bob")
    assert posing.returncode == 2
    assert "would not count" in posing.stderr
    assert not Path(f"{plan}.approvals").exists()


def test_approve_refuses_an_altered_plan_and_a_preview(planned: Planned, tmp_path: Path) -> None:
    dep, ana, _bob, plan = planned
    next_year = f"{datetime.now(UTC).year + 1}-06-01"
    preview = dep.saved_plan("preview.json", "--as-of", next_year)
    document = json.loads(plan.read_text())
    document["items"] = document["items"][:1]
    altered = tmp_path / "altered.json"
    altered.write_text(json.dumps(document))

    for path, reason in ((altered, "changed_plan"), (preview, "preview_plan")):
        refused = approve(dep, path, ana)
        assert refused.returncode == 3, refused.stderr
        assert f"reason: {reason}" in refused.stderr
        assert not Path(f"{path}.approvals").exists()


def test_a_signature_made_with_ssh_keygen_is_an_approval(planned: Planned, tmp_path: Path) -> None:
    dep, ana, bob, plan = planned
    plan_hash = json.loads(plan.read_text())["plan_hash"]
    signature = ssh_keygen_sign(bob.key, tmp_path / "hash", plan_hash, "goto-retention-plan")
    assert approve(dep, plan, ana).returncode == 0
    added = dep.cli("approve", str(plan), "--signature", str(signature))
    assert added.returncode == 0, added.stderr
    assert "2 of 2 approvals (ana, bob)" in added.stdout


def test_run_yes_is_refused_when_approvals_are_required(two_person_rule: TwoPersonRule) -> None:
    dep, _ana, _bob = two_person_rule

    refused = dep.cli("run", "--yes")

    assert refused.returncode == 3, refused.stderr
    assert "reason: approvals" in refused.stderr
    assert dep.deletes() == []
    assert len(approvals_refusals(dep)) == 1


def test_approval_settings_are_checked(deployment: Any, tmp_path: Path) -> None:
    dep = deployment()
    negative = dep.cli("plan", extra_env={"RETENTION_APPROVALS_REQUIRED": "-1"})
    assert negative.returncode == 2
    assert "RETENTION_APPROVALS_REQUIRED" in negative.stderr
    missing = dep.cli(
        "plan",
        extra_env={
            "RETENTION_APPROVALS_REQUIRED": "1",
            "RETENTION_APPROVERS": str(tmp_path / "nowhere"),
        },
    )
    assert missing.returncode == 2
    assert "no approval could ever count" in missing.stderr
