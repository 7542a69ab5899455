"""The GoTo client as execution's removal port: send a removal, read what is left of a session.

What is left is read from the ORGANIZER's own history for a window around the session's start:
an admin may read that for any organizer, whereas meeting-id history answers only for the
admin's own meetings (an empty answer there would prove nothing). One call per organizer and
window serves every pending intent in it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlite_utils import Database

from retention.engine import inventory
from retention.goto.client import GoToClient
from retention.goto.models import HistoricalSession

# History is read around the session's start, the way the API expects small windows.
_AROUND = timedelta(days=2)


class ApiRemovals:
    """Sends DELETEs through the client; NotFound and ApiError come through as it raises them."""

    def __init__(self, client: GoToClient, db: Database) -> None:
        self._client = client
        self._db = db
        self._read: dict[tuple[int, datetime], list[HistoricalSession]] = {}

    async def remove(
        self,
        action: str,
        organizer_key: int,
        session_id: int,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        calls = {
            "delete_session": self._client.delete_session,
            "delete_attendees": self._client.delete_attendees,
            "delete_recordings": self._client.delete_recordings,
        }
        if action not in calls:
            raise ValueError(f"unknown removal action {action!r}")
        await calls[action](organizer_key, session_id, before_send=before_send)

    async def present(
        self, action: str, organizer_key: int, meeting_id: int, session_id: int
    ) -> bool:
        record = inventory.session_record(self._db, session_id)
        if record is None or record.start_time is None:
            # Without a start time there is no window to read: report it present, so the
            # DELETE is sent again and a 404 answers "already absent".
            return True
        for session in await self._history(organizer_key, record.start_time):
            if session.session_id != session_id or session.meeting_id != meeting_id:
                continue
            if action == "delete_session":
                return True
            if action == "delete_recordings":
                return session.recording is not None
            return session.num_attendees is None or session.num_attendees > 0
        return False

    async def _history(self, organizer_key: int, start: datetime) -> list[HistoricalSession]:
        # Windows are aligned to whole days so that intents of one organizer share a read.
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        key = (organizer_key, day)
        if key not in self._read:
            answer = await self._client.organizer_history(
                organizer_key, day - _AROUND, day + _AROUND + timedelta(days=1)
            )
            self._read[key] = list(answer.items)
        return self._read[key]
