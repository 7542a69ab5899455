"""The preflight checks `apply` adds to the session's list: the plan file may be applied as it is.

In order: the file is the plan this state directory recorded (`changed_plan`), the policies are
those it was made from (`changed_plan`), it is fresh (`stale_plan`), it was not applied before
(`applied_before`), and its removals stay within the caps (`cap`, `global_cap`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from retention.engine.plan import CapViolation, LoadedPlan, PlanItem, cap_violations, plan_hash
from retention.engine.state import known_plan_hash, plan_applied_by
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

    def unaltered(opening: Opening) -> None:
        actual = plan_hash(loaded.document)
        if actual != loaded.recorded_hash:
            raise _refuse(
                loaded,
                "changed_plan",
                f"the plan file was altered: its content hashes to {actual[:16]}…, "
                f"not the {loaded.recorded_hash[:16] or '(missing)'}… it was written with",
            )
        known = known_plan_hash(opening.db, loaded.plan_id)
        if known is None:
            raise _refuse(
                loaded, "changed_plan", "it was not made by this service's state directory"
            )
        if known != actual:
            raise _refuse(
                loaded, "changed_plan", "it does not match the plan recorded when it was made"
            )

    def policies_unchanged(opening: Opening) -> None:
        then = str(loaded.document.get("policies_digest"))
        now = opening.policy_set.digest
        if then != now:
            raise _refuse(
                loaded,
                "changed_plan",
                "the policy and hold files changed since the plan was made "
                f"(digest {then[:16]}… then, {now[:16]}… now)",
            )

    def fresh(opening: Opening) -> None:
        created = datetime.fromisoformat(str(loaded.document["created_at"]))
        age = opening.clock() - created
        max_age = timedelta(hours=opening.settings.plan_max_age_hours)
        if age > max_age:
            raise _refuse(
                loaded,
                "stale_plan",
                f"the plan is {age.total_seconds() / 3600:.1f} hours old, over the maximum of "
                f"{max_age.total_seconds() / 3600:g} hours",
            )

    def not_applied_before(opening: Opening) -> None:
        applied_by = plan_applied_by(opening.db, loaded.plan_id)
        if applied_by:
            raise _refuse(loaded, "applied_before", f"it was already applied by {applied_by}")

    def within_caps(opening: Opening) -> None:
        per_policy = loaded.document["summary"].get("per_policy", {})
        in_scope = {name: totals.get("in_scope", 0) for name, totals in per_policy.items()}
        found = violations(opening.settings, loaded.items, opening.policy_set, in_scope)
        if found:
            raise cap_refusal(found, f"plan {loaded.plan_id} refused by safety caps: ")

    return [
        Check("plan file unaltered", unaltered),
        Check("policies unchanged", policies_unchanged),
        Check("plan fresh", fresh),
        Check("plan not applied before", not_applied_before),
        Check("plan within caps", within_caps),
    ]
