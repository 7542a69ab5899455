"""A policy change as a diff of two plans on one inventory: removals added and dropped, per
policy, and the holds and retain rules that start or stop blocking an item.

Pure: two Plan objects in (the base, e.g. the main branch's folder, and the change, the folder
in force), one PlanChange out. A removal is its (session, action): one that moves from one
policy to another is neither added nor dropped. A blocked entry is its (session, action, by).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from retention.engine.plan import Plan

# The blockers a change of policies starts or stops: holds and retain rules.
BLOCKER_PREFIXES = ("hold:", "retain:")

Entry = Mapping[str, Any]


@dataclass(frozen=True)
class PlanChange:
    """What the change does to the removals, and to what blocks them."""

    added: list[dict[str, Any]]
    dropped: list[dict[str, Any]]
    by_policy: dict[str, dict[str, int]]
    started: list[dict[str, Any]]
    stopped: list[dict[str, Any]]

    @property
    def empty(self) -> bool:
        """Whether the change makes no difference to removals or blockers."""
        return not (self.added or self.dropped or self.started or self.stopped)

    def document(self) -> dict[str, Any]:
        """The JSON form: `added`, `dropped`, `by_policy` and `blocking`."""
        return {
            "added": self.added,
            "dropped": self.dropped,
            "by_policy": self.by_policy,
            "blocking": {"started": self.started, "stopped": self.stopped},
        }


def compare_plans(base: Plan, change: Plan, policies: Sequence[str] | None = None) -> PlanChange:
    """The difference `change` makes to `base`'s removals and blockers.

    With `policies`, only entries those policies call for count (a name one plan lacks is a
    policy the change adds or drops). Both plans should decide on one inventory as of one time.
    """
    wanted = set(policies) if policies else None
    before = _removals(base, wanted)
    after = _removals(change, wanted)
    added = [after[key] for key in after if key not in before]
    dropped = [before[key] for key in before if key not in after]
    return PlanChange(
        added=added,
        dropped=dropped,
        by_policy=_per_policy(added, dropped),
        started=_only_in(change.blocked, base.blocked, wanted),
        stopped=_only_in(base.blocked, change.blocked, wanted),
    )


def _removals(plan: Plan, wanted: set[str] | None) -> dict[tuple[int, str], dict[str, Any]]:
    """The plan's items by (session, action), in plan order (oldest session first)."""
    return {
        item.key: item.to_json() for item in plan.items if wanted is None or item.policy in wanted
    }


def _per_policy(added: Iterable[Entry], dropped: Iterable[Entry]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"added": 0, "dropped": 0})
    for item in added:
        counts[str(item["policy"])]["added"] += 1
    for item in dropped:
        counts[str(item["policy"])]["dropped"] += 1
    return {name: counts[name] for name in sorted(counts)}


def _blocker_key(entry: Entry) -> tuple[str, str, str]:
    return (str(entry["sessionId"]), str(entry["action"]), str(entry["by"]))


def _only_in(
    these: Iterable[Entry], those: Iterable[Entry], wanted: set[str] | None
) -> list[dict[str, Any]]:
    """Hold and retain entries of `these` that `those` lacks, in their order."""
    known = {_blocker_key(entry) for entry in those}
    return [
        dict(entry)
        for entry in these
        if str(entry["by"]).startswith(BLOCKER_PREFIXES)
        and (wanted is None or entry["policy"] in wanted)
        and _blocker_key(entry) not in known
    ]
