"""Session records for the in-process tests: one weekly sync, varied field by field."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from retention.engine.records import SessionRecord


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
