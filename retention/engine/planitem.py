"""A plan's items and its canonical hash: what the plan, its file and its reader share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from retention.canonical import canonical_hash
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
    # Informational, for the reviewer: covered by the plan hash, never read to decide.
    organizer_email: str | None = None
    group: str | None = None
    subject: str | None = None
    # When the policies first called for it, blockers counted (engine/timeliness.py); plans
    # made before it was recorded have none.
    due_at: datetime | None = None

    @property
    def key(self) -> tuple[int, str]:
        """What identifies the removal: the session and the action."""
        return (self.session_id, self.action)

    def blocked_entry(self, by: str, until: datetime | None, **more: Any) -> dict[str, Any]:
        """The plan's `blocked` entry for this item when admission keeps it back (`by`)."""
        return {
            "organizerKey": str(self.organizer_key),
            "sessionId": str(self.session_id),
            "action": self.action,
            "policy": self.policy,
            "by": by,
            "until": iso(until),
            **more,
            "due_at": iso(self.due_at),
        }

    def to_json(self) -> dict[str, Any]:
        """The item as the plan file writes it (ids as strings, as the API sends them)."""
        return {
            "organizerKey": str(self.organizer_key),
            "organizer_email": self.organizer_email,
            "group": self.group,
            "subject": self.subject,
            "meetingId": str(self.meeting_id),
            "sessionId": str(self.session_id),
            "action": self.action,
            "policy": self.policy,
            "policy_hash": self.policy_hash,
            "also_matched": list(self.also_matched),
            "startTime": iso(self.start_time),
            "endTime": iso(self.end_time),
            "recordingId": self.recording_id,
            "recording_bytes": self.recording_bytes,
            "attendees": self.attendees,
            "due_at": iso(self.due_at),
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
            start_time=parse_iso(data["startTime"]),
            end_time=parse_iso(data["endTime"]),
            recording_id=data.get("recordingId"),
            recording_bytes=_optional_int(data["recording_bytes"]),
            attendees=_optional_int(data["attendees"]),
            organizer_email=_optional_str(data.get("organizer_email")),
            group=_optional_str(data.get("group")),
            subject=_optional_str(data.get("subject")),
            due_at=parse_iso(data.get("due_at")),
        )


def plan_hash(document: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a plan document without its `plan_hash` field."""
    return canonical_hash({key: value for key, value in document.items() if key != "plan_hash"})


def iso(value: datetime | None) -> str | None:
    """A time as the plan file writes it (UTC with `Z`), None as null."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def parse_iso(value: str | None) -> datetime | None:
    """A time the plan file wrote, back as a datetime."""
    if value is None:
        return None
    return parse_stored_time(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_str(value: Any) -> str | None:
    """A field plans before it existed lack (None), else its text."""
    return None if value is None else str(value)
