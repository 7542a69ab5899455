"""`retention approve` (sign a plan by name) and `retention plans` (review mode's proposals)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from retention.approvals import sshsig
from retention.approvals.decisions import Decision, read_decision
from retention.approvals.proposals import pending
from retention.approvals.signers import AllowedSigners, load_allowed_signers
from retention.approvals.store import (
    Approval,
    append_approval,
    approvals_needed,
    tally_of,
)
from retention.cli.app import cli
from retention.cli.tables import FitTable, console_for, say
from retention.engine.planfile import LoadedPlan, load_plan_file
from retention.engine.planitem import plan_hash
from retention.errors import InvalidInput, Refused
from retention.settings import Settings, load_settings


def _approvable(plan_file: Path) -> LoadedPlan:
    """The plan, once it is one `apply` could take: unaltered and not a preview."""
    loaded = load_plan_file(plan_file)
    actual = plan_hash(loaded.document)
    if actual != loaded.recorded_hash:
        raise Refused(
            f"plan {loaded.plan_id} was altered: its content hashes to {actual[:16]}…, not the "
            f"{loaded.recorded_hash[:16] or '(missing)'}… it was written with; not approved",
            hint="approve only the plan file as it was written; ask for a new plan",
            reason="changed_plan",
        )
    if loaded.document.get("preview"):
        raise Refused(
            f"plan {loaded.plan_id} is a preview (as of {loaded.document.get('as_of')}): it can "
            "never be applied, so it is not approved",
            hint="approve a plan made as of now (`retention plan --out FILE` without --as-of)",
            reason="preview_plan",
        )
    return loaded


def _signers(settings: Settings) -> AllowedSigners | None:
    path = settings.approvers_file
    return None if path is None else load_allowed_signers(path)


def _principal(
    given: str | None, fingerprint: str, public_line: str, signers: AllowedSigners | None
) -> str:
    """The name to approve as: --principal, else the one the allowed signers give the key."""
    if signers is None:
        if given:
            return given
        raise InvalidInput(
            "no principal: pass --principal NAME (RETENTION_APPROVERS is not set, so the "
            "allowed signers cannot name you)",
            hint="approve as the name the allowed-signers file gives your key",
        )
    names = signers.principals_of(fingerprint)
    if given and given in names:
        return given
    if given or not names:
        who = f"as {given!r} " if given else ""
        raise InvalidInput(
            f"the allowed signers ({signers.path}) do not let the key {fingerprint} approve "
            f"{who}: its approval would not count",
            hint=f"ask for this line to be added to {signers.path}: "
            f"{given or 'YOUR-NAME'} {public_line}",
        )
    if len(names) > 1:
        raise InvalidInput(
            f"the key {fingerprint} may approve as {', '.join(names)}",
            hint="pass --principal NAME to say which",
        )
    return names[0]


@cli.command("approve")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Your Ed25519 private key (ssh-keygen -t ed25519, or retention audit keygen).",
)
@click.option(
    "--signature",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A signature made by `ssh-keygen -Y sign -n goto-retention-plan` instead of --key.",
)
@click.option("--comment", default="", help="Why you approve (recorded with the approval).")
@click.option("--principal", help="The name to approve as (default: the allowed signers').")
@click.option(
    "--decision",
    "decision_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A decision document (the plan with items postponed, as the console saves it): "
    "sign it instead of the whole plan.",
)
def approve_command(  # noqa: PLR0917 (click passes each option by position)
    plan_file: Path,
    key: Path | None,
    signature: Path | None,
    comment: str,
    principal: str | None,
    decision_file: Path | None,
) -> None:
    """Approve a plan by name: sign its hash (or its decision document's) and add the approval
    to PLAN_FILE.approvals."""
    if (key is None) == (signature is None):
        raise InvalidInput(
            "pass exactly one of --key KEY and --signature SIG",
            hint="--key signs here; --signature takes one made with ssh-keygen -Y sign",
        )
    loaded = _approvable(plan_file)
    decision = _decision(loaded, decision_file)
    message = decision.hash.encode()
    if key is not None:
        private = sshsig.load_private_key(key)
        armored = sshsig.sign(private, message)
        public = private.public_key()
    else:
        assert signature is not None
        armored = _read_signature(signature)
        try:
            public = sshsig.verify(armored, message).key
        except sshsig.SignatureError as exc:
            raise Refused(
                f"the signature {signature} is not one of plan {loaded.plan_id}: {exc}",
                hint=f"sign the decision's hash: printf %s {decision.hash} | ssh-keygen -Y "
                f"sign -n {sshsig.NAMESPACE} -f KEY",
                reason="approvals",
            ) from None
    settings = load_settings()
    signers = _signers(settings)
    fingerprint = sshsig.fingerprint(public)
    name = _principal(principal, fingerprint, sshsig.openssh_line(public), signers)
    approval = Approval(
        principal=name,
        fingerprint=fingerprint,
        time=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        comment=comment,
        signature=armored,
        exclusions=decision.exclusions,
    )
    written = append_approval(plan_file, approval)
    postponed = f" with {len(decision.exclusions)} item(s) postponed" if decision.exclusions else ""
    click.echo(
        f"approved plan {loaded.plan_id}{postponed} as {name} ({fingerprint}); added to {written}"
    )
    hours = (datetime.now(UTC) - loaded.created_at).total_seconds() / 3600
    if hours > settings.plan_max_age_hours:
        click.echo(
            f"warning: the plan is {hours:.1f} hours old, over RETENTION_PLAN_MAX_AGE_HOURS="
            f"{settings.plan_max_age_hours:g}: apply will refuse it as stale",
            err=True,
        )
    if signers is not None:
        tally = tally_of(plan_file, loaded.recorded_hash, settings)
        click.echo(f"the plan has {tally.summary(approvals_needed(settings))}")


def _decision(loaded: LoadedPlan, path: Path | None) -> Decision:
    """The decision to sign: the plan whole, or the document given, which must be this plan's
    with items it lists."""
    if path is None:
        return Decision(loaded.recorded_hash)
    decision = read_decision(path)
    if decision.plan_hash != loaded.recorded_hash:
        raise Refused(
            f"the decision {path} is about plan hash {decision.plan_hash[:16]}…, not plan "
            f"{loaded.plan_id} ({loaded.recorded_hash[:16]}…); not approved",
            hint="save the decision from this proposal's page",
            reason="changed_plan",
        )
    listed = {(str(item.session_id), item.action) for item in loaded.items}
    strays = [e for e in decision.exclusions if (e.session_id, e.action) not in listed]
    if strays:
        raise InvalidInput(
            f"the decision {path} postpones items the plan does not list: "
            + ", ".join(f"{e.session_id} {e.action}" for e in strays),
            hint="save the decision from this proposal's page",
        )
    return decision


def _read_signature(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read the signature {path}: {exc}",
            hint="pass the file ssh-keygen -Y sign wrote (PLAN.sig)",
        ) from None


def _listing(settings: Settings) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    needed = approvals_needed(settings)
    rows = []
    for proposal in pending(settings):
        tally = proposal.tally(settings)
        rows.append(
            {
                "file": str(proposal.path),
                "plan_id": proposal.plan.plan_id,
                "plan_hash": proposal.plan.recorded_hash,
                "created_at": proposal.plan.document["created_at"],
                "age_hours": round(proposal.age_hours(now), 2),
                "expired": proposal.expired(now, settings),
                "items": len(proposal.plan.items),
                "selected_policies": proposal.selected,
                "approvals": {
                    "valid": len(tally.valid),
                    "needed": max(1, needed),
                    "principals": tally.principals,
                    "not_counted": tally.rejected,
                },
            }
        )
    return rows


@cli.command("plans")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")
def plans_command(output: str) -> None:
    """List review mode's proposals with their approvals (valid / needed) and age."""
    settings = load_settings()
    rows = _listing(settings)
    if output == "json":
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print_proposals(rows, settings.proposals_dir, console_for())


def print_proposals(rows: list[dict[str, Any]], folder: Path, console: Console) -> None:
    """The proposals as a table; approvers are addresses, never cut: a row that cannot fit
    becomes `field  value` lines."""
    if not rows:
        say(console, f"no proposal waits in {folder}")
        return
    table = FitTable(f"Proposals in {folder}")
    table.column("file", "whole")
    table.column("removals", "number")
    table.column("approvals", "number")
    table.column("approved by", "words")
    table.column("age", "words", justify="right")
    for row in rows:
        approvals = row["approvals"]
        age = f"{row['age_hours']:.1f} h" + (" (expired)" if row["expired"] else "")
        table.row(
            Path(row["file"]).name,
            str(row["items"]),
            f"{approvals['valid']}/{approvals['needed']}",
            ", ".join(approvals["principals"]) or "-",
            age,
        )
    table.print(console)
    say(console, "read one with: retention plan show FILE --items")
    say(console, "approve one with: retention approve FILE --key KEY")
