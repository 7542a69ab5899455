"""Session records and audit intents for the in-process tests, varied field by field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from retention.engine.records import SessionRecord

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def ended(session_id: int = 1, *, at: datetime, **changes: object) -> SessionRecord:
    """Ana's recorded weekly sync in Sales, an hour long, that ended `at`; `changes` replace
    fields."""
    base = SessionRecord(
        session_id=session_id,
        meeting_id=500,
        organizer_key=1001,
        organizer_email="ana@example.com",
        group_key=10,
        group_name="Sales",
        subject="Weekly sync",
        meeting_type="recurring",
        start_time=at - timedelta(hours=1),
        end_time=at,
        attendee_count=3,
        recording_id=f"rec-{session_id}",
        recording_bytes=100,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def intent_fields(session_id: int, **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of an audit intent to delete session `session_id`."""
    fields: dict[str, Any] = {
        "run_id": "run-1",
        "plan_id": "plan-1",
        "policy": "sessions-90d",
        "policy_hash": "c" * 64,
        "action": "delete_session",
        "organizer_key": 100,
        "meeting_id": 5000 + session_id,
        "session_id": session_id,
        "subject": None,
        "start_time": WHEN,
        "end_time": WHEN,
        "recording_ids": [],
        "recording_bytes": None,
        "attendee_count": 3,
    }
    fields.update(overrides)
    return fields
