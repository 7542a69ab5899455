"""What a run writes to the audit record besides its removals: opening it, ids, provenance."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from retention.audit.checkpoint import load_signing_key
from retention.audit.log import AuditLog
from retention.audit.witness import witness_argv
from retention.engine.coverage import ScopeLeft
from retention.policy import PolicySet
from retention.settings import Settings

CHECKPOINT_FILE = "audit-checkpoints.jsonl"


def open_audit(settings: Settings, clock: Callable[[], datetime]) -> AuditLog:
    """The audit record of this state directory, with its signing key when one is configured."""
    key = settings.signing_key
    return AuditLog.open(
        settings.audit_db,
        subject_mode=settings.audit_subject,
        signing_key=load_signing_key(key.get_secret_value()) if key else None,
        checkpoint_path=settings.state_dir / CHECKPOINT_FILE,
        clock=clock,
        witness=witness_argv(settings.checkpoint_command),
        state_db=settings.state_db,
    )


def new_run_id(now: datetime) -> str:
    """A run id that sorts by time and is unique: run-20261123T030000Z-1a2b3c4d."""
    return f"run-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def policy_loaded(audit: AuditLog, run_id: str, policy_set: PolicySet) -> None:
    """Record the policy and hold files in force for a run: names, hashes and texts."""
    audit.policy_loaded(
        run_id=run_id,
        files=[(f.path.name, f.sha256, f.text) for f in policy_set.files],
        policies=sorted(policy_set.content_hashes.items()),
        holds=[(hold.id, hold.reason, hold.expires) for hold in policy_set.holds],
    )


def holds_blocked(audit: AuditLog, run_id: str, blocked: list[dict[str, Any]]) -> None:
    """One hold_blocked summary per hold: which sessions it kept and how many removals."""
    sessions: dict[str, set[int]] = defaultdict(set)
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in blocked:
        by = str(entry["by"])
        if by.startswith("hold:"):
            hold_id = by.removeprefix("hold:")
            sessions[hold_id].add(int(entry["sessionId"]))
            actions[hold_id][str(entry["action"])] += 1
    for hold_id in sorted(sessions):
        audit.hold_blocked(
            run_id=run_id,
            hold_id=hold_id,
            sessions=sorted(sessions[hold_id]),
            actions=dict(actions[hold_id]),
        )


def plan_approved(
    audit: AuditLog,
    run_id: str,
    plan: Mapping[str, Any],
    approved_by: str,
    as_of: datetime | None,
    *,
    approvers: list[dict[str, str]] | None = None,
    exclusions: list[dict[str, str]] | None = None,
) -> None:
    """The plan (its document) is approved: by whom, the named approvers it carried, and the
    removals they postponed."""
    audit.plan_approved(
        run_id=run_id,
        plan_id=str(plan["plan_id"]),
        plan_hash=str(plan["plan_hash"]),
        approved_by=approved_by,
        as_of=as_of,
        approvers=approvers,
        exclusions=exclusions,
    )


def scope_left(audit: AuditLog, run_id: str, grown: Sequence[ScopeLeft]) -> None:
    """A `hold_scope_left` event for each organizer whose sessions a hold keeps out of scope."""
    for left in grown:
        audit.hold_scope_left(
            run_id=run_id,
            hold_id=left.hold_id,
            organizer_key=left.organizer_key,
            sessions=left.sessions,
        )
