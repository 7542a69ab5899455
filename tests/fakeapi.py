"""An in-memory account implementing execution's removal port, for fast in-process tests.

It holds which removals are still possible (a session, its recording, its attendee list),
answers DELETEs as the API does (204 once, 404 after; a chosen status or no answer for the
sessions told to fail; none at all while hung) and reads what is left. `before_send` runs just
before each DELETE is answered, so a test can look at the audit record then, place a hold, or
stop a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from retention.engine.planitem import PlanItem
from retention.goto.errors import ApiError, NotFound
from retention.sandbox.policies import policy_set, rule

WHEN = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
POLICY = policy_set(rule("sessions", 90))
ACTIONS = ("delete_session", "delete_recordings", "delete_attendees")


def item(session_id: int, action: str = "delete_session", organizer_key: int = 100) -> PlanItem:
    """A plan item for one session of the fake account."""
    return PlanItem(
        organizer_key=organizer_key,
        meeting_id=5000 + session_id,
        session_id=session_id,
        action=action,
        policy="sessions-90d",
        policy_hash="c" * 64,
        also_matched=(),
        start_time=WHEN,
        end_time=WHEN,
        recording_id="rec-1" if action == "delete_recordings" else None,
        recording_bytes=1024 if action == "delete_recordings" else None,
        attendees=3,
    )


@dataclass
class FakeAccount:
    """Sessions and what each still has; every DELETE received, in order."""

    sessions: dict[int, set[str]] = field(default_factory=dict)
    sent: list[tuple[str, int]] = field(default_factory=list)
    reads: list[tuple[str, int]] = field(default_factory=list)
    fail_with: dict[int, int | None] = field(default_factory=dict)
    reads_fail_from: int | None = None
    before_send: Callable[[str, int], None] | None = None
    hung: asyncio.Event | None = None  # while set, DELETEs wait for `released`
    released: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def with_sessions(cls, *session_ids: int) -> FakeAccount:
        return cls({session_id: set(ACTIONS) for session_id in session_ids})

    async def remove(
        self,
        action: str,
        organizer_key: int,
        session_id: int,
        *,
        before_send: Callable[[], None] | None = None,
    ) -> None:
        self.sent.append((action, session_id))
        if self.before_send is not None:
            self.before_send(action, session_id)
        if before_send is not None:
            try:
                before_send()  # the client's turn is over: the caller's last check
            except Exception:
                self.sent.pop()  # kept off the wire
                raise
        if self.hung is not None and self.hung.is_set():
            await self.released.wait()
        path = f"/organizers/{organizer_key}/sessions/{session_id}"
        if session_id in self.fail_with:
            raise ApiError("DELETE", path, self.fail_with[session_id], "failing on purpose")
        left = self.sessions.get(session_id)
        if left is None or action not in left:
            raise NotFound("DELETE", path, 404, "not found")
        if action == "delete_session":
            del self.sessions[session_id]
        else:
            left.discard(action)

    async def present(
        self, action: str, organizer_key: int, meeting_id: int, session_id: int
    ) -> bool:
        if self.reads_fail_from is not None and len(self.reads) >= self.reads_fail_from:
            raise ApiError("GET", f"/organizers/{organizer_key}/historicalMeetings", 503, "down")
        self.reads.append((action, session_id))
        return action in self.sessions.get(session_id, set())
