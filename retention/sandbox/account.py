"""The account a sandbox serves: groups, organizers, meetings, sessions, and their indexes."""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ADMIN_SCOPE = "collab: identity:"


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The one OAuth client the sandbox accepts and the refresh token it starts with."""

    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"  # noqa: S105 - a public, documented sandbox credential
    refresh_token: str = "sandbox-refresh"  # noqa: S105 - same


@dataclass(frozen=True, slots=True)
class Group:
    """A group of organizers; `parent_key` equals `group_key` for a top-level group."""

    group_key: int
    name: str
    parent_key: int
    status: str = "active"


@dataclass(frozen=True, slots=True)
class Organizer:
    """A user who hosts meetings."""

    organizer_key: int
    email: str
    first_name: str
    last_name: str
    group_key: int
    status: str = "active"
    products: tuple[str, ...] = ("G2M",)
    max_attendees: int = 250
    locale: str = "en_US"


@dataclass(frozen=True, slots=True)
class Meeting:
    """A meeting; recurring meetings reuse their `meeting_id` for many sessions."""

    meeting_id: int
    organizer_key: int
    subject: str
    meeting_type: str
    conference_call_info: str = "VoIP"
    password_required: bool = False


@dataclass(frozen=True, slots=True)
class Attendee:
    """One line of a session's attendee list; times are epoch seconds, None when unknown."""

    name: str
    email: str
    join_time: int | None
    leave_time: int | None


@dataclass(frozen=True, slots=True)
class Recording:
    """The recording of a session."""

    recording_id: str
    name: str
    file_size: int
    transcript: bool = False
    ai_summary: bool = False


@dataclass(slots=True)
class Session:
    """One held instance of a meeting.

    Generated sessions keep only `attendee_count` and synthesize their list on demand from
    the account's attendee seed (see `Account.attendees_of`), which keeps half a million
    sessions small in memory; sessions from a data file carry `attendees` explicitly.
    `end` is None for a finished session whose end the data does not know. `raw` and
    `omitted` bend its history rows on purpose (fields replaced as given, fields left out),
    so that tests can serve data the API should never send.
    """

    session_id: int
    meeting_id: int
    organizer_key: int
    start: int
    end: int | None
    attendee_count: int = 0
    attendees: tuple[Attendee, ...] | None = None
    recording: Recording | None = None
    raw: dict[str, Any] | None = None
    omitted: tuple[str, ...] = ()


def _by_start(session: Session) -> tuple[int, int]:
    return (session.start, session.session_id)


_FIRST = ("Ana", "Bo", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jun", "Kofi")
_LAST = ("Lee", "Chen", "Okafor", "Novak", "Silva", "Tanaka", "Müller", "Haddad", "Kim", "Rossi")


@dataclass
class Account:
    """Everything the sandbox serves, with the indexes its queries need.

    `now` is the account's fixed clock in epoch seconds, or None to follow the real clock.
    """

    account_key: str
    groups: dict[int, Group]
    organizers: dict[int, Organizer]
    meetings: dict[int, Meeting]
    sessions: dict[int, Session]
    now: int | None = None
    oauth: OAuthClient = field(default_factory=OAuthClient)
    attendee_seed: int = 0
    _by_organizer: dict[int, list[Session]] = field(default_factory=dict, repr=False)
    _by_meeting: dict[int, list[Session]] = field(default_factory=dict, repr=False)
    _by_group: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        """Rebuild the organizer, meeting and group indexes from the tables."""
        self._by_organizer = {key: [] for key in self.organizers}
        self._by_meeting = {key: [] for key in self.meetings}
        self._by_group = {key: [] for key in self.groups}
        for organizer in self.organizers.values():
            self._by_group[organizer.group_key].append(organizer.organizer_key)
        for session in self.sessions.values():
            self._by_organizer[session.organizer_key].append(session)
            self._by_meeting[session.meeting_id].append(session)
        for sessions in (*self._by_organizer.values(), *self._by_meeting.values()):
            sessions.sort(key=_by_start)

    @property
    def admin(self) -> Organizer:
        """The organizer the sandbox's tokens belong to: the account's first organizer."""
        return next(iter(self.organizers.values()))

    def group_members(self, group_key: int) -> list[int]:
        """Organizer keys of a group, in account order."""
        return self._by_group[group_key]

    def organizer_sessions(self, organizer_key: int, start: int, end: int) -> list[Session]:
        """Sessions of an organizer that started in [start, end], by start time."""
        return _window(self._by_organizer[organizer_key], start, end)

    def meeting_sessions(self, meeting_id: int, start: int, end: int) -> list[Session]:
        """Sessions of a meeting that started in [start, end], by start time."""
        return _window(self._by_meeting[meeting_id], start, end)

    def all_meeting_sessions(self, meeting_id: int) -> list[Session]:
        """Every session of a meeting, by start time."""
        return list(self._by_meeting[meeting_id])

    def future_sessions(self, organizer_key: int, now: int) -> list[Session]:
        """Sessions of an organizer that start after `now`, by start time."""
        sessions = self._by_organizer[organizer_key]
        return sessions[bisect.bisect_right(sessions, now, key=lambda s: s.start) :]

    def remove_session(self, session: Session) -> None:
        """Delete a session with its attendee list and recording."""
        del self.sessions[session.session_id]
        for index in (
            self._by_organizer[session.organizer_key],
            self._by_meeting[session.meeting_id],
        ):
            position = bisect.bisect_left(index, _by_start(session), key=_by_start)
            del index[position]

    def attendees_of(self, session: Session) -> tuple[Attendee, ...]:
        """The session's attendee list, synthesized deterministically when not stored."""
        if session.attendees is not None:
            return session.attendees
        seed = self.attendee_seed * 1_000_003 + session.session_id
        rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
        listing = []
        for index in range(session.attendee_count):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            join = session.start + rng.randint(0, 300)
            leave = None if session.end is None else max(join, session.end - rng.randint(0, 600))
            email = f"{first.lower()}.{index}@guest.example.org"
            listing.append(Attendee(f"{first} {last}", email, join, leave))
        return tuple(listing)

    def iter_sessions(self) -> Iterator[Session]:
        """Every session, in session id order."""
        for key in sorted(self.sessions):
            yield self.sessions[key]


def _window(sessions: list[Session], start: int, end: int) -> list[Session]:
    low = bisect.bisect_left(sessions, start, key=lambda s: s.start)
    high = bisect.bisect_right(sessions, end, key=lambda s: s.start)
    return sessions[low:high]
