"""Plans for the in-process engine tests: a policy file loaded from its folder, then a plan built
on the decisions for some sessions, as the service builds one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from retention.engine.decide import decide
from retention.engine.plan import Plan, build_plan
from retention.engine.records import SessionRecord
from retention.policy import PolicySet, load_policy_set


def load_folder(folder: Path, text: str) -> PolicySet:
    """`text` written to FOLDER/p.yaml, and the policy set that folder loads as."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "p.yaml").write_text(text)
    return load_policy_set([folder])


def plan_for(
    sessions: Iterable[SessionRecord],
    policy_set: PolicySet,
    as_of: datetime,
    *,
    plan_id: str = "p",
    created_at: datetime | None = None,
    **options: Any,
) -> Plan:
    """The plan of `sessions` as of `as_of`, made then unless `created_at` says otherwise."""
    return build_plan(
        decide(sessions, policy_set, as_of),
        policy_set,
        plan_id=plan_id,
        created_at=as_of if created_at is None else created_at,
        as_of=as_of,
        **options,
    )
