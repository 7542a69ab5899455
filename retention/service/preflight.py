"""The preflight checks `apply` adds to the session's list: the plan file may be applied as it is.

In order: the plan may be applied (`engine.planfile.plan_refusals`: unaltered and made here,
bound to the policies in force, fresh, not a preview, for this account, not applied before; the
first reason's code is the refusal's), then its removals stay within the run's cap
(`global_cap`). A policy over its own cap is refused on its own while the others proceed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

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


def plan_checks(loaded: LoadedPlan) -> list[Check]:
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
        Check("plan within the run's cap", within_caps),
    ]
