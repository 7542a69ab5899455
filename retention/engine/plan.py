"""Plans: decisions gathered into a reviewable, hashable document, and the caps that refuse one.

Pure: the plan id, creation time and as-of time are arguments. The JSON form
(`goto-retention-plan/1`) is a contract: the compliance officer reviews it, `apply` checks it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from retention.canonical import canonical_hash
from retention.engine.decide import Decision
from retention.errors import InvalidInput, Refused
from retention.policy import PolicySet
from retention.times import parse_stored_time

PLAN_FORMAT = "goto-retention-plan/1"


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One request to make: which session, which action, and which policy calls for it."""

    organizer_key: int
    meeting_id: int
    session_id: int
    action: str
    policy: str
    policy_hash: str
    also_matched: tuple[str, ...]
    start_time: datetime | None
    end_time: datetime | None
    recording_id: str | None
    recording_bytes: int | None
    attendees: int | None

    @property
    def key(self) -> tuple[int, str]:
        """What identifies the removal: the session and the action."""
        return (self.session_id, self.action)

    def to_json(self) -> dict[str, Any]:
        """The item as the plan file writes it (ids as strings, as the API sends them)."""
        return {
            "organizerKey": str(self.organizer_key),
            "meetingId": str(self.meeting_id),
            "sessionId": str(self.session_id),
            "action": self.action,
            "policy": self.policy,
            "policy_hash": self.policy_hash,
            "also_matched": list(self.also_matched),
            "startTime": _iso(self.start_time),
            "endTime": _iso(self.end_time),
            "recordingId": self.recording_id,
            "recording_bytes": self.recording_bytes,
            "attendees": self.attendees,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanItem:
        """Read an item back from a plan file; KeyError/ValueError on a malformed one."""
        return cls(
            organizer_key=int(data["organizerKey"]),
            meeting_id=int(data["meetingId"]),
            session_id=int(data["sessionId"]),
            action=str(data["action"]),
            policy=str(data["policy"]),
            policy_hash=str(data["policy_hash"]),
            also_matched=tuple(str(name) for name in data["also_matched"]),
            start_time=_parse_iso(data["startTime"]),
            end_time=_parse_iso(data["endTime"]),
            recording_id=data.get("recordingId"),
            recording_bytes=_optional_int(data["recording_bytes"]),
            attendees=_optional_int(data["attendees"]),
        )


@dataclass
class PolicyTotals:
    """What one policy would remove."""

    sessions: int = 0
    recordings: int = 0
    recording_bytes: int = 0
    attendee_lists: int = 0
    attendees: int = 0

    def add(self, item: PlanItem) -> None:
        if item.action == "delete_session":
            self.sessions += 1
        if item.action in ("delete_session", "delete_recordings") and item.recording_id:
            self.recordings += 1
            self.recording_bytes += item.recording_bytes or 0
        if item.action in ("delete_session", "delete_attendees") and item.attendees:
            self.attendee_lists += 1
            self.attendees += item.attendees


@dataclass
class Plan:
    """A plan: the items to execute, what was blocked and what is unknown, with provenance."""

    plan_id: str
    created_at: datetime
    as_of: datetime
    policies_digest: str
    policy_files: list[dict[str, str]]
    policy_hashes: dict[str, str]
    selected: list[str] | None
    items: list[PlanItem] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    unknown: list[dict[str, Any]] = field(default_factory=list)
    scanned: int = 0
    in_scope: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Per policy and in total: sessions, recordings, bytes and attendee lists to remove."""
        per_policy: dict[str, PolicyTotals] = defaultdict(PolicyTotals)
        total = PolicyTotals()
        for item in self.items:
            per_policy[item.policy].add(item)
            total.add(item)
        blocked_by: dict[str, int] = defaultdict(int)
        for entry in self.blocked:
            blocked_by[entry["by"]] += 1
        return {
            "sessions_scanned": self.scanned,
            "items": len(self.items),
            "total": vars(total),
            "per_policy": {
                name: {**vars(totals), "in_scope": self.in_scope.get(name, 0)}
                for name, totals in sorted(per_policy.items())
            },
            "blocked": len(self.blocked),
            "blocked_by": dict(sorted(blocked_by.items())),
            "unknown": len(self.unknown),
        }

    def document(self) -> dict[str, Any]:
        """The plan file's content, `plan_hash` included."""
        body: dict[str, Any] = {
            "format": PLAN_FORMAT,
            "plan_id": self.plan_id,
            "created_at": _iso(self.created_at),
            "as_of": _iso(self.as_of),
            "policies_digest": self.policies_digest,
            "policy_files": self.policy_files,
            "policies": self.policy_hashes,
            "selected_policies": self.selected,
            "items": [item.to_json() for item in self.items],
            "blocked": self.blocked,
            "unknown": self.unknown,
            "summary": self.summary(),
        }
        body["plan_hash"] = plan_hash(body)
        return body


def plan_hash(document: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a plan document without its `plan_hash` field."""
    return canonical_hash({key: value for key, value in document.items() if key != "plan_hash"})


def build_plan(
    decisions: Iterable[Decision],
    policy_set: PolicySet,
    *,
    plan_id: str,
    created_at: datetime,
    as_of: datetime,
    selected: Sequence[str] | None = None,
) -> Plan:
    """Gather decisions into a plan; with `selected`, only those policies' actions are items."""
    plan = Plan(
        plan_id=plan_id,
        created_at=created_at,
        as_of=as_of,
        policies_digest=policy_set.digest,
        policy_files=[{"file": f.path.name, "sha256": f.sha256} for f in policy_set.files],
        policy_hashes=dict(sorted(policy_set.content_hashes.items())),
        selected=sorted(selected) if selected else None,
    )
    wanted = set(selected) if selected else None
    in_scope: dict[str, int] = defaultdict(int)
    for decision in decisions:
        plan.scanned += 1
        for name in decision.in_scope:
            in_scope[name] += 1
        session = decision.session
        for planned in decision.actions:
            if wanted is not None and planned.policy not in wanted:
                continue
            plan.items.append(
                PlanItem(
                    organizer_key=session.organizer_key,
                    meeting_id=session.meeting_id,
                    session_id=session.session_id,
                    action=planned.action,
                    policy=planned.policy,
                    policy_hash=policy_set.content_hash(planned.policy),
                    also_matched=planned.also_matched,
                    start_time=session.start_time,
                    end_time=session.end_time,
                    recording_id=session.recording_id,
                    recording_bytes=session.recording_bytes,
                    attendees=session.attendee_count,
                )
            )
        for blocked in decision.blocked:
            if wanted is not None and blocked.policy not in wanted:
                continue
            plan.blocked.append(
                {
                    "organizerKey": str(session.organizer_key),
                    "sessionId": str(session.session_id),
                    "action": blocked.action,
                    "policy": blocked.policy,
                    "by": blocked.by,
                    "until": _iso(blocked.until),
                }
            )
        if decision.unknown and not decision.actions:
            plan.unknown.append(
                {
                    "organizerKey": str(session.organizer_key),
                    "sessionId": str(session.session_id),
                    "fields": list(decision.unknown_fields),
                    "reason": decision.reason,
                }
            )
    plan.in_scope = dict(in_scope)
    return plan


@dataclass(frozen=True)
class CapViolation:
    """One cap a plan exceeds: which, selected against population, and the limit."""

    policy: str | None
    cap: str
    selected: int
    population: int | None
    limit: float

    def describe(self) -> str:
        who = f"policy {self.policy}" if self.policy else "this run"
        if self.cap == "max_percent":
            share = 100.0 * self.selected / self.population if self.population else 100.0
            return (
                f"{who} would remove {self.selected} of {self.population} sessions in its scope "
                f"({share:.1f}%), over its max_percent of {self.limit:g}%"
            )
        return f"{who} would make {self.selected} removals, over its {self.cap} of {self.limit:g}"


class CapExceeded(Refused):
    """A plan goes over a safety cap: it is refused as a whole before any DELETE."""

    def __init__(self, violations: Sequence[CapViolation]) -> None:
        self.violations = list(violations)
        super().__init__(
            "plan refused by safety caps: " + "; ".join(v.describe() for v in violations),
            hint="review the plan; raise the policy's limits or the run cap only if it is right",
        )


def cap_violations(
    items: Sequence[PlanItem],
    policy_set: PolicySet,
    in_scope: Mapping[str, int],
    *,
    max_per_run: int,
) -> list[CapViolation]:
    """Every cap the items exceed: per policy max_deletions and max_percent, and the run cap."""
    counts: dict[str, int] = defaultdict(int)
    for item in items:
        counts[item.policy] += 1
    violations: list[CapViolation] = []
    for policy in policy_set.policies:
        selected = counts.get(policy.name, 0)
        limits = policy.limits
        if not selected or limits is None:
            continue
        if limits.max_deletions is not None and selected > limits.max_deletions:
            violations.append(
                CapViolation(policy.name, "max_deletions", selected, None, limits.max_deletions)
            )
        population = in_scope.get(policy.name, 0)
        if limits.max_percent is not None and (
            population == 0 or 100.0 * selected / population > limits.max_percent
        ):
            violations.append(
                CapViolation(policy.name, "max_percent", selected, population, limits.max_percent)
            )
    if len(items) > max_per_run:
        violations.append(
            CapViolation(None, "max_deletions_per_run", len(items), None, max_per_run)
        )
    return violations


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _parse_iso(value: str | None) -> datetime | None:
    return None if value is None else parse_stored_time(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class LoadedPlan:
    """A plan file as read back: its document, its items and where it came from."""

    path: str
    document: Mapping[str, Any]
    items: list[PlanItem]

    @property
    def plan_id(self) -> str:
        return str(self.document["plan_id"])

    @property
    def recorded_hash(self) -> str:
        return str(self.document.get("plan_hash", ""))


def read_plan_file(path: str, text: str) -> LoadedPlan:
    """Parse a plan file; a file that is not a readable plan is invalid input (exit 2)."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path}:{exc.lineno}:{exc.colno}: not a JSON plan file: {exc.msg}",
            hint="pass a file written by `retention plan --out FILE`",
        ) from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        raise InvalidInput(
            f"{path}: not a plan file (format is not {PLAN_FORMAT})",
            hint="pass a file written by `retention plan --out FILE`",
        )
    try:
        items = [PlanItem.from_json(item) for item in document["items"]]
        parse_stored_time(str(document["created_at"]))
        str(document["plan_id"])
        str(document["policies_digest"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{path}: plan file is missing or has a malformed field: {exc}",
            hint="regenerate the plan with `retention plan --out FILE`",
        ) from None
    return LoadedPlan(path=path, document=document, items=items)


def plan_refusals(
    plan: LoadedPlan,
    *,
    known_hash: str | None,
    policies_digest: str,
    now: datetime,
    max_age: timedelta,
) -> list[str]:
    """Why this plan must not be applied: altered, unknown, policies changed, or stale."""
    reasons: list[str] = []
    actual = plan_hash(plan.document)
    if actual != plan.recorded_hash:
        reasons.append(
            f"the plan file was altered: its content hashes to {actual[:16]}…, "
            f"not the {plan.recorded_hash[:16] or '(missing)'}… it was written with"
        )
    elif known_hash is None:
        reasons.append(f"plan {plan.plan_id} was not made by this service's state directory")
    elif known_hash != actual:
        reasons.append(f"plan {plan.plan_id} does not match the plan recorded when it was made")
    if plan.document.get("policies_digest") != policies_digest:
        reasons.append(
            "the policy and hold files changed since the plan was made "
            f"(digest {str(plan.document.get('policies_digest'))[:16]}… then, "
            f"{policies_digest[:16]}… now)"
        )
    created = parse_stored_time(str(plan.document["created_at"]))
    if now - created > max_age:
        hours = (now - created).total_seconds() / 3600
        reasons.append(
            f"the plan is {hours:.1f} hours old, over the maximum of "
            f"{max_age.total_seconds() / 3600:g} hours"
        )
    return reasons
