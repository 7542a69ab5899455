"""The inventory's view of one session: what scan stores and what decide reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One historical session as the inventory knows it.

    `None` means unknown (the API sent nothing usable); the decision engine never treats an
    unknown value as matching a condition. Times are aware UTC datetimes.
    """

    session_id: int
    meeting_id: int
    organizer_key: int
    organizer_email: str | None
    group_key: int | None
    group_name: str | None
    subject: str | None
    meeting_type: str | None
    start_time: datetime | None
    end_time: datetime | None
    attendee_count: int | None
    recording_id: str | None = None
    recording_name: str | None = None
    recording_bytes: int | None = None
    # False when the API listed a recording the service could not read whole (no id, no
    # integer size): every fact about the recording is then unknown, not "none".
    recording_known: bool = True

    @property
    def has_recording(self) -> bool | None:
        """Whether the session still has a recording; None when its recording is unknown."""
        if not self.recording_known:
            return None
        return self.recording_id is not None
