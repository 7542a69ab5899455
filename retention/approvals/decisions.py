"""The decision document approvers sign: a plan whole, or the plan with its items postponed.

A whole approval signs the plan hash itself (so an SSH approval of the plan file counts as it
always did). With exclusions, approvers sign the hex sha256 of the canonical JSON of

    {"plan_hash": HASH, "exclusions": [{"sessionId", "action", "until", "reason", "by"}, ...]}

each exclusion one item of the plan, sorted by (sessionId, action). A choice of "all of an
organizer's" or "all of a meeting's" items is expanded to those items before it is signed, so
that the document says exactly which removals wait, until when, why and on whose word.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from retention.canonical import canonical_hash
from retention.engine.planitem import PlanItem
from retention.errors import InvalidInput

DECISION_FORMAT = "goto-retention-decision/1"
_MAX_REASON = 500


@dataclass(frozen=True, order=True)
class Exclusion:
    """One removal of the plan postponed: until a date (UTC, inclusive), why, on whose word."""

    session_id: str
    action: str
    until: str
    reason: str
    by: str

    def as_json(self) -> dict[str, str]:
        return {
            "sessionId": self.session_id,
            "action": self.action,
            "until": self.until,
            "reason": self.reason,
            "by": self.by,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Exclusion:
        fields = ("sessionId", "action", "until", "reason", "by")
        if not all(isinstance(value.get(name), str) for name in fields):
            raise ValueError("an exclusion needs sessionId, action, until, reason and by")
        return cls(*(str(value[name]) for name in fields))


@dataclass(frozen=True)
class Decision:
    """A plan hash and the exclusions approvers agree on."""

    plan_hash: str
    exclusions: tuple[Exclusion, ...] = ()

    @property
    def hash(self) -> str:
        """What approvers sign: the plan hash itself when nothing is excluded."""
        if not self.exclusions:
            return self.plan_hash
        return canonical_hash(
            {"plan_hash": self.plan_hash, "exclusions": [e.as_json() for e in self.exclusions]}
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "format": DECISION_FORMAT,
            "plan_hash": self.plan_hash,
            "exclusions": [e.as_json() for e in self.exclusions],
            "decision_hash": self.hash,
        }


def decision_of(plan_hash: str, exclusions: Iterable[Exclusion]) -> Decision:
    """The decision with its exclusions in their one order (duplicates dropped)."""
    return Decision(plan_hash, tuple(sorted(set(exclusions))))


def check_until(text: str, today: date) -> str:
    """A postponement's end: an ISO date after today (InvalidInput otherwise)."""
    try:
        until = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"postponed until {text!r}: not a date", hint="write the date as YYYY-MM-DD"
        ) from None
    if until <= today:
        raise InvalidInput(
            f"postponed until {until}: not after today", hint="postpone to a later date"
        )
    return until.isoformat()


def expand(
    items: Sequence[PlanItem],
    *,
    chosen: Iterable[tuple[str, str]] = (),
    organizers: Iterable[str] = (),
    meetings: Iterable[str] = (),
    until: str,
    reason: str,
    by: str,
) -> list[Exclusion]:
    """The plan's items chosen one by one, by organizer key or by meeting id, as exclusions."""
    reason = " ".join(reason.split())
    if not reason or len(reason) > _MAX_REASON:
        raise InvalidInput(
            "a postponement needs a reason (at most 500 characters)",
            hint="say why the items wait: it is recorded",
        )
    keys, owners, meeting_ids = set(chosen), set(organizers), set(meetings)
    known = {(str(item.session_id), item.action) for item in items}
    if unknown := sorted(keys - known):
        raise InvalidInput(
            f"not items of this plan: {', '.join(f'{s} {a}' for s, a in unknown)}",
            hint="choose items the proposal lists",
        )
    found = [
        Exclusion(str(item.session_id), item.action, until, reason, by)
        for item in items
        if (str(item.session_id), item.action) in keys
        or str(item.organizer_key) in owners
        or str(item.meeting_id) in meeting_ids
    ]
    if not found:
        raise InvalidInput("no item of the plan was chosen", hint="choose at least one item")
    return found


def read_decision(path: Path) -> Decision:
    """A decision document written by the console or by hand (`retention approve --decision`)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
        exclusions = [Exclusion.from_json(entry) for entry in value["exclusions"]]
        plan_hash = str(value["plan_hash"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            f"cannot read the decision {path}: {exc}",
            hint="save the decision document the console offers, unchanged",
        ) from None
    decision = decision_of(plan_hash, exclusions)
    stated = value.get("decision_hash")
    if stated is not None and stated != decision.hash:
        raise InvalidInput(
            f"the decision {path} says its hash is {stated}, but its content hashes to "
            f"{decision.hash}",
            hint="save the decision document the console offers, unchanged",
        )
    return decision
