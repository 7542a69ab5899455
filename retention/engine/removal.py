"""The GoTo client seen by execution and reconciliation: send a removal, read what is left."""

from __future__ import annotations

from datetime import timedelta

from sqlite_utils import Database

from retention.engine import inventory
from retention.goto.client import GoToClient

# Meeting-id history is read around the session's start, the way the API expects small windows.
_AROUND = timedelta(days=2)


class ApiRemover:
    """Sends the DELETE for one action; NotFound and ApiError come through as the client raises."""

    def __init__(self, client: GoToClient) -> None:
        self._client = client

    async def remove(self, action: str, organizer_key: int, session_id: int) -> None:
        if action == "delete_session":
            await self._client.delete_session(organizer_key, session_id)
        elif action == "delete_attendees":
            await self._client.delete_attendees(organizer_key, session_id)
        elif action == "delete_recordings":
            await self._client.delete_recordings(organizer_key, session_id)
        else:
            raise ValueError(f"unknown removal action {action!r}")


class ApiStateReader:
    """Whether what an action removes is still in the account, read from meeting-id history."""

    def __init__(self, client: GoToClient, db: Database) -> None:
        self._client = client
        self._db = db

    async def present(
        self, action: str, organizer_key: int, meeting_id: int, session_id: int
    ) -> bool:
        record = inventory.session_record(self._db, session_id)
        if record is None or record.start_time is None:
            # Without a start time there is no window to read: report it present, so the
            # DELETE is sent again and a 404 answers "already absent".
            return True
        start = record.start_time - _AROUND
        end = record.start_time + _AROUND
        history = await self._client.meeting_history(meeting_id, start, end)
        for session in history.items:
            if session.session_id != session_id or session.organizer_key != organizer_key:
                continue
            if action == "delete_session":
                return True
            if action == "delete_recordings":
                return session.recording is not None
            return session.num_attendees is None or session.num_attendees > 0
        return False
