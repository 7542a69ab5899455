"""Safety caps: a policy over its own cap is refused on its own, the run cap refuses the run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from retention.engine.planitem import PlanItem
from retention.policy import PolicySet


@dataclass(frozen=True)
class CapViolation:
    """One cap a plan exceeds: which, selected against population, and the limit."""

    policy: str | None
    cap: str
    selected: int
    population: int | None
    limit: float

    @property
    def by(self) -> str:
        """How the plan's `blocked` entries name this refusal: `cap:POLICY`."""
        return f"cap:{self.policy}"

    def describe(self) -> str:
        who = f"policy {self.policy}" if self.policy else "this run"
        if self.cap == "max_percent":
            share = 100.0 * self.selected / self.population if self.population else 100.0
            return (
                f"{who} would remove {self.selected} of {self.population} sessions in its scope "
                f"({share:.1f}%), over its max_percent of {self.limit:g}%"
            )
        return f"{who} would make {self.selected} removals, over its {self.cap} of {self.limit:g}"

    def hint(self) -> str:
        """What to do about it."""
        if self.policy is None:
            return (
                "review the plan; raise RETENTION_MAX_DELETIONS_PER_RUN only if it is right, "
                "or apply in batches with `retention plan --policy P --limit N`"
            )
        return (
            f"raise policy {self.policy}'s limits.{self.cap} if the removals are right, or "
            f"apply them in batches with `retention plan --policy {self.policy} --limit N`"
        )

    def as_event(self) -> dict[str, object]:
        """What a `refused` event records of it: policy, count and cap."""
        return {
            "policy": self.policy,
            "reason": "cap" if self.policy else "global_cap",
            "cap": self.cap,
            "limit": self.limit,
            "count": self.selected,
            "population": self.population,
            "message": self.describe(),
            "hint": self.hint(),
        }


def policy_cap_violations(
    items: Sequence[PlanItem], policy_set: PolicySet, in_scope: Mapping[str, int]
) -> list[CapViolation]:
    """Per policy, the first of its caps (max_deletions, then max_percent) its items exceed."""
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item.policy] += 1
    violations: list[CapViolation] = []
    for policy in policy_set.policies:
        selected = counts.get(policy.name, 0)
        limits = policy.limits
        if not selected or limits is None:
            continue
        population = in_scope.get(policy.name, 0)
        if limits.max_deletions is not None and selected > limits.max_deletions:
            violations.append(
                CapViolation(policy.name, "max_deletions", selected, None, limits.max_deletions)
            )
        elif limits.max_percent is not None and (
            population == 0 or 100.0 * selected / population > limits.max_percent
        ):
            violations.append(
                CapViolation(policy.name, "max_percent", selected, population, limits.max_percent)
            )
    return violations


def run_cap_violation(items: Sequence[PlanItem], *, max_per_run: int) -> CapViolation | None:
    """RETENTION_MAX_DELETIONS_PER_RUN: over it, the whole run is refused."""
    if len(items) > max_per_run:
        return CapViolation(None, "max_deletions_per_run", len(items), None, max_per_run)
    return None


def cap_violations(
    items: Sequence[PlanItem],
    policy_set: PolicySet,
    in_scope: Mapping[str, int],
    *,
    max_per_run: int,
) -> list[CapViolation]:
    """Every cap the items exceed: per policy max_deletions or max_percent, and the run cap."""
    violations = policy_cap_violations(items, policy_set, in_scope)
    over_run = run_cap_violation(items, max_per_run=max_per_run)
    return violations if over_run is None else [*violations, over_run]
