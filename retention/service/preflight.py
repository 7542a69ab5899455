"""The preflight checks `apply` adds to the session's list: the plan file may be applied as it is.

In order: the plan may be applied (`engine.planfile.plan_refusals`: unaltered and made here,
bound to the policies in force, fresh, not a preview, for this account, not applied before; the
first reason's code is the refusal's), then it has the approvals it needs (`approvals`:
RETENTION_APPROVALS_REQUIRED, at least one in review mode), then its removals stay within the
run's cap (`global_cap`). A policy over its own cap is refused on its own while the others
proceed. `run` makes a plan nobody approved: with approvals required it is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from retention.approvals.decisions import Exclusion
from retention.approvals.store import Approval, approvals_needed, tally_of
from retention.engine.caps import CapViolation, cap_violations
from retention.engine.planfile import LoadedPlan, plan_refusals
from retention.engine.planitem import PlanItem
from retention.engine.state import account_of, known_plan_hash, plan_applied_by
from retention.errors import ReasonCode, Refused
from retention.policy import PolicySet
from retention.service.session import Check, Opening
from retention.settings import Settings

_NEW_PLAN = "make a new plan with `retention plan --out FILE` and review it"


def _refuse(loaded: LoadedPlan, reason: ReasonCode, why: str) -> Refused:
    return Refused(f"plan {loaded.plan_id} refused: {why}", hint=_NEW_PLAN, reason=reason)


def violations(
    settings: Settings,
    items: list[PlanItem],
    policy_set: PolicySet,
    in_scope: Mapping[str, int],
) -> list[CapViolation]:
    """The caps these items go over, with the run's own cap from the settings."""
    return cap_violations(items, policy_set, in_scope, max_per_run=settings.max_deletions_per_run)


def cap_refusal(found: list[CapViolation], why: str) -> Refused:
    """The refusal of removals over caps: `global_cap` when the run's own cap is among them."""
    reason: ReasonCode = "global_cap" if any(v.policy is None for v in found) else "cap"
    return Refused(
        why + "; ".join(v.describe() for v in found),
        hint="review the plan; raise the policy's limits or the run cap only if it is right",
        reason=reason,
    )


class ApprovalsRefused(Refused):
    """A plan with fewer valid approvals than it needs; `details` go in the `refused` event."""

    def __init__(self, loaded: LoadedPlan, have: list[str], need: int, rejected: list[str]) -> None:
        shown = f" ({', '.join(have)})" if have else ""
        why = f"; not counted: {'; '.join(rejected[:3])}" if rejected else ""
        super().__init__(
            f"plan {loaded.plan_id} refused: it has {len(have)} of the {need} approvals it "
            f"needs{shown}{why}",
            hint=f"each approver runs `retention approve {loaded.path} --key KEY`; --yes is "
            "no substitute",
            reason="approvals",
        )
        self.details = {"have": len(have), "need": need, "principals": have}


@dataclass
class ApprovalsCheck:
    """The plan's valid approvals, counted against the allowed signers and the listed passkeys;
    `valid` keeps them, and `exclusions` what they postponed, for the `plan_approved` event."""

    loaded: LoadedPlan
    valid: list[Approval] = field(default_factory=list)
    exclusions: tuple[Exclusion, ...] = ()

    def __call__(self, opening: Opening) -> None:
        need = approvals_needed(opening.settings)
        if need == 0:
            return
        tally = tally_of(Path(self.loaded.path), self.loaded.recorded_hash, opening.settings)
        if len(tally.valid) < need:
            raise ApprovalsRefused(self.loaded, tally.principals, need, tally.rejected)
        self.valid = tally.valid
        self.exclusions = tally.exclusions

    def recorded(self) -> list[dict[str, str]] | None:
        """Each approver's principal, fingerprint, time and comment; None when none were used."""
        return [approval.recorded() for approval in self.valid] or None


def unapproved_run(opening: Opening) -> None:
    """`run` applies a plan it has just made: with approvals required, nobody approved it."""
    need = opening.settings.approvals_required
    if need >= 1:
        raise Refused(
            f"run refused: plans need {need} approvals (RETENTION_APPROVALS_REQUIRED) and a "
            "plan made by `run` has none; --yes is no substitute",
            hint="make a plan with `retention plan --out FILE`, have it approved with "
            "`retention approve FILE --key KEY`, then `retention apply FILE`",
            reason="approvals",
        )


RUN_CHECKS = (Check("approvals required", unapproved_run),)


def plan_checks(loaded: LoadedPlan, approvals: ApprovalsCheck | None = None) -> list[Check]:
    """The checks of one plan file, in the order they are made."""

    def may_be_applied(opening: Opening) -> None:
        settings = opening.settings
        found = plan_refusals(
            loaded,
            known_hash=known_plan_hash(opening.db, loaded.plan_id),
            policies_digest=opening.policy_set.digest,
            policy_hashes=opening.policy_set.content_hashes,
            now=opening.clock(),
            max_age=timedelta(hours=settings.plan_max_age_hours),
            max_clock_skew=timedelta(seconds=settings.max_clock_skew),
            account_key=account_of(opening.db),
            api_base_url=settings.api_base_url,
            applied_by=plan_applied_by(opening.db, loaded.plan_id),
        )
        if found:
            reason = found[0][0]
            raise _refuse(loaded, reason, "; ".join(text for _code, text in found))  # type: ignore[arg-type]

    def within_caps(opening: Opening) -> None:
        found = violations(opening.settings, loaded.items, opening.policy_set, loaded.in_scope)
        run_wide = [v for v in found if v.policy is None]
        if run_wide:
            raise cap_refusal(run_wide, f"plan {loaded.plan_id} refused by the run's cap: ")

    return [
        Check("plan may be applied", may_be_applied),
        Check("plan approved", approvals or ApprovalsCheck(loaded)),
        Check("plan within the run's cap", within_caps),
    ]
