"""Which of a plan's approvals count: this plan's hash, the named key, the allowed principal,
each principal once; a line that is not an approval is reported, never counted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from approvers import Approver, write_signers

from retention.approvals import sshsig
from retention.approvals.signers import load_allowed_signers
from retention.approvals.store import Approval, append_approval, approvals_path, count_approvals

THIS_PLAN, OTHER_PLAN = "3f" * 32, "40" * 32


def approval(who: Approver, plan_hash: str, *, principal: str | None = None) -> Approval:
    key = sshsig.load_private_key(who.key)
    return Approval(
        principal=principal or who.name,
        fingerprint=who.fingerprint,
        time="2026-12-01T09:00:00Z",
        comment="",
        signature=sshsig.sign(key, plan_hash.encode()),
    )


def test_only_valid_approvals_by_distinct_principals_count(
    approver: Callable[[str], Approver], tmp_path: Path
) -> None:
    ana, bob, eve = approver("ana"), approver("bob"), approver("eve")
    signers = load_allowed_signers(write_signers(tmp_path / "allowed_signers", ana, bob))
    plan = tmp_path / "plan.json"
    append_approval(plan, approval(ana, THIS_PLAN))
    append_approval(plan, approval(ana, THIS_PLAN))  # the same principal again
    append_approval(plan, approval(bob, OTHER_PLAN))  # another plan's hash
    append_approval(plan, approval(eve, THIS_PLAN))  # not an allowed signer
    append_approval(plan, approval(eve, THIS_PLAN, principal="bob"))  # posing as bob
    with approvals_path(plan).open("a") as lines:
        lines.write("not json\n")
        forged = approval(ana, THIS_PLAN).as_json() | {"fingerprint": bob.fingerprint}
        lines.write(json.dumps(forged) + "\n")  # names a key other than the one that signed

    tally = count_approvals(plan, THIS_PLAN, signers)

    assert tally.principals == ["ana"]
    assert len(tally.rejected) == 5
    rejected = "\n".join(tally.rejected)
    assert "line 3 (bob): the signature does not verify over this plan's hash" in rejected
    assert "line 4 (eve): the allowed signers do not let" in rejected
    assert "line 5 (bob): the allowed signers do not let" in rejected
    assert "line 6 is not an approval" in rejected
    assert f"line 7 (ana): signed by {ana.fingerprint}, not the key {bob.fingerprint}" in rejected

    append_approval(plan, approval(bob, THIS_PLAN))
    assert count_approvals(plan, THIS_PLAN, signers).principals == ["ana", "bob"]


def test_a_plan_without_approvals_has_none(tmp_path: Path) -> None:
    signers = load_allowed_signers(write_signers(tmp_path / "allowed_signers"))
    tally = count_approvals(tmp_path / "plan.json", THIS_PLAN, signers)
    assert (tally.valid, tally.rejected) == ([], [])


def test_one_key_under_two_principals_counts_once(
    approver: Callable[[str], Approver], tmp_path: Path
) -> None:
    ana, bob = approver("ana"), approver("bob")
    signers_file = tmp_path / "allowed_signers"
    # One key, two names for one person (OpenSSH allows a list of principals on a line).
    signers_file.write_text(
        f"ana@example.com,ana {ana.public_line}\n{bob.name} {bob.public_line}\n"
    )
    signers = load_allowed_signers(signers_file)
    plan = tmp_path / "plan.json"
    append_approval(plan, approval(ana, THIS_PLAN, principal="ana@example.com"))
    append_approval(plan, approval(ana, THIS_PLAN, principal="ana"))

    tally = count_approvals(plan, THIS_PLAN, signers)

    assert tally.principals == ["ana@example.com"]
    assert tally.rejected == [
        f"line 2 (ana): the key {ana.fingerprint} already approved this plan as another principal"
    ]
    append_approval(plan, approval(bob, THIS_PLAN))
    assert count_approvals(plan, THIS_PLAN, signers).principals == ["ana@example.com", "bob"]
