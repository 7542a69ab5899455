"""The check that explain agrees with a plan, shared by the sandbox and property tests."""

from __future__ import annotations

from collections import Counter

from retention.engine.explain import Explanation
from retention.engine.plan import Plan


def check_agreement(plan: Plan, explained: dict[int, Explanation]) -> Counter[str]:
    """Assert explain's verdicts agree with the plan; the count of each verdict seen."""
    planned = {(item.session_id, item.action): item.policy for item in plan.items}
    for (session_id, action), policy in planned.items():
        verdict = explained[session_id].verdict(action)
        assert (verdict.verdict, verdict.policy) == ("due", policy), (session_id, verdict)
    first_blocker: dict[tuple[int, str], str] = {}
    for entry in plan.blocked:
        first_blocker.setdefault((int(entry["sessionId"]), entry["action"]), entry["by"])
    for (session_id, action), by in first_blocker.items():
        verdict = explained[session_id].verdict(action)
        assert verdict.verdict in {"held", "retained"}, (session_id, verdict)
        assert verdict.by == by
    seen: Counter[str] = Counter()
    for session_id, explanation in explained.items():
        for verdict in explanation.actions:
            seen[verdict.verdict] += 1
            if (session_id, verdict.action) not in planned:
                assert verdict.verdict != "due", (session_id, verdict)
            if verdict.verdict == "subsumed":
                assert (session_id, "delete_session") in planned
    return seen
