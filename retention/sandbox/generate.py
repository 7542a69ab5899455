"""A deterministic generator of realistic accounts, from a seed, sized by the caller."""

from __future__ import annotations

import random
from datetime import datetime

from retention.sandbox.account import (
    Account,
    Group,
    Meeting,
    Organizer,
    Recording,
    Session,
)

GROUP_LIMIT = 50
_FIRST = (
    "Ana",
    "Bo",
    "Carmen",
    "Dmitri",
    "Emeka",
    "Freya",
    "Gustavo",
    "Hiro",
    "Ines",
    "Jonas",
    "Keiko",
    "Liam",
    "Maya",
    "Nikhil",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sven",
    "Tala",
)
_LAST = (
    "Lee",
    "Chen",
    "Okafor",
    "Novak",
    "Silva",
    "Tanaka",
    "Müller",
    "Haddad",
    "Kim",
    "Rossi",
    "García",
    "Nowak",
    "Dubois",
    "Singh",
    "O'Brien",
    "Jensen",
    "Costa",
    "Ivanova",
)
_GROUPS = (
    "Sales",
    "Engineering",
    "Support",
    "Marketing",
    "Finance",
    "Legal",
    "HR",
    "Operations",
    "Research",
    "Customer Success",
)
_RECURRING = (
    "Weekly sync",
    "Daily stand-up",
    "Sprint planning",
    "1:1 check-in",
    "Pipeline review",
    "Team retro",
    "Office hours",
    "Release readiness",
)
_ONE_OFF = (
    "Customer onboarding: Acme Corp",
    "Quarterly business review",
    "Interview: backend engineer",
    "Incident review #{n}",
    "Product demo for Globex",
    "Board prep",
    "Contract negotiation: Initech",
    "Town hall Q{q}",
    "Vendor call (R&D)",
    "Budget review FY{y}",
    "Escalation: ticket {n}",
    "Webinar dry run",
)
_AUDIO = ("VoIP", "Hybrid", "PSTN", "Free")
_DAY = 86_400


def generate_account(
    *, seed: int, organizers: int, groups: int, days: int, sessions_per_day: int, now: datetime
) -> Account:
    """An account of `organizers` spread over `groups`, with `days` of history up to `now`.

    The same arguments always give the same account. When there are more than 50
    organizers the first group gets 51, so the group endpoints' 50-organizer limit can be
    exercised. The admin (first organizer) has one session ongoing at `now`, and recurring
    meetings have sessions scheduled after `now` (served as upcoming meetings).
    """
    if organizers < 1 or groups < 1 or days < 1 or sessions_per_day < 0:
        raise ValueError("organizers, groups and days must be at least 1, sessions_per_day 0")
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    now_epoch = int(now.timestamp())
    group_table = _groups(groups)
    organizer_table = _organizers(rng, organizers, list(group_table))
    meetings, recurring = _meetings(rng, organizer_table)
    builder = _SessionBuilder(rng, meetings, recurring, organizer_table)
    start_day = now_epoch - now_epoch % _DAY - days * _DAY
    for day in range(days):
        for _ in range(sessions_per_day):
            builder.add_past(start_day + day * _DAY, now_epoch)
    builder.add_ongoing(next(iter(organizer_table)), now_epoch)
    builder.add_upcoming(now_epoch)
    return Account(
        account_key=str(7_000_000 + seed % 1_000_000),
        groups=group_table,
        organizers=organizer_table,
        meetings=meetings,
        sessions=builder.sessions,
        now=now_epoch,
        attendee_seed=seed,
    )


def _groups(count: int) -> dict[int, Group]:
    table: dict[int, Group] = {}
    for index in range(count):
        key = 10 + index
        name = _GROUPS[index % len(_GROUPS)] + ("" if index < len(_GROUPS) else f" {index}")
        # every fourth group is a subgroup of the first, as multi-tier accounts have
        parent = 10 if index and index % 4 == 0 else key
        table[key] = Group(key, name, parent)
    return table


def _organizers(rng: random.Random, count: int, group_keys: list[int]) -> dict[int, Organizer]:
    table: dict[int, Organizer] = {}
    large = GROUP_LIMIT + 1 if count > GROUP_LIMIT else 0
    # the big group is first; the others share the rest evenly
    pool = group_keys[1:] if large and len(group_keys) > 1 else group_keys
    for index in range(count):
        group = group_keys[0] if index < large else pool[(index - large) % len(pool)]
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        key = 1001 + index
        email = f"{first.lower()}.{key}@example.com"
        status = "suspended" if index and rng.random() < 0.03 else "active"
        table[key] = Organizer(
            key,
            email,
            first,
            last,
            group,
            status,
            ("G2M",) if rng.random() < 0.8 else ("G2M", "G2W"),
            rng.choice((25, 150, 250)),
            rng.choice(("en_US", "de_DE", "fr_FR")),
        )
    return table


def _meetings(
    rng: random.Random, organizers: dict[int, Organizer]
) -> tuple[dict[int, Meeting], dict[int, list[int]]]:
    meetings: dict[int, Meeting] = {}
    recurring: dict[int, list[int]] = {}
    for organizer_key in organizers:
        own = recurring.setdefault(organizer_key, [])
        for subject in rng.sample(_RECURRING, 2):
            meeting_id = 100_000_000 + len(meetings) * 7919
            meetings[meeting_id] = Meeting(
                meeting_id,
                organizer_key,
                subject,
                "recurring",
                rng.choice(_AUDIO),
                rng.random() < 0.2,
            )
            own.append(meeting_id)
    return meetings, recurring


class _SessionBuilder:
    """Adds sessions (and one-off meetings) day by day, so session ids grow with the day."""

    def __init__(
        self,
        rng: random.Random,
        meetings: dict[int, Meeting],
        recurring: dict[int, list[int]],
        organizers: dict[int, Organizer],
    ) -> None:
        self.rng = rng
        self.meetings = meetings
        self.recurring = recurring
        self.organizer_keys = list(organizers)
        self.sessions: dict[int, Session] = {}

    def _one_off(self, organizer_key: int, meeting_type: str) -> int:
        rng = self.rng
        subject = rng.choice(_ONE_OFF).format(
            n=rng.randint(100, 9999), q=rng.randint(1, 4), y=rng.randint(24, 27)
        )
        meeting_id = 100_000_000 + len(self.meetings) * 7919
        self.meetings[meeting_id] = Meeting(
            meeting_id, organizer_key, subject, meeting_type, rng.choice(_AUDIO), rng.random() < 0.2
        )
        return meeting_id

    def _add(self, meeting_id: int, start: int, end: int | None) -> Session:
        rng = self.rng
        session_id = 900_001 + len(self.sessions)
        attendees = 0 if rng.random() < 0.12 else rng.randint(1, 12)
        recording = None
        if rng.random() < 0.3:
            name = self.meetings[meeting_id].subject
            recording = Recording(
                f"rec-{session_id}",
                name,
                rng.randint(2, 900) * 1_048_576,
                rng.random() < 0.5,
                rng.random() < 0.3,
            )
        organizer_key = self.meetings[meeting_id].organizer_key
        session = Session(
            session_id, meeting_id, organizer_key, start, end, attendees, None, recording
        )
        self.sessions[session_id] = session
        return session

    def add_past(self, day_start: int, now: int) -> None:
        rng = self.rng
        organizer_key = rng.choice(self.organizer_keys)
        kind = rng.random()
        if kind < 0.6:
            meeting_id = rng.choice(self.recurring[organizer_key])
        else:
            meeting_id = self._one_off(organizer_key, "scheduled" if kind < 0.9 else "immediate")
        start = day_start + rng.randint(7 * 3600, 19 * 3600)
        end = start + rng.choice((15, 25, 30, 45, 60, 90)) * 60 + rng.randint(0, 300)
        if end > now:  # history before `now` only; today's late meetings have not happened
            return
        self._add(meeting_id, start, end)

    def add_ongoing(self, organizer_key: int, now: int) -> None:
        self._add(self.recurring[organizer_key][0], now - 600, now + 3000).recording = None

    def add_upcoming(self, now: int) -> None:
        for organizer_key, meeting_ids in self.recurring.items():
            start = now - now % _DAY + _DAY + 9 * 3600 + (organizer_key % 16) * 1800
            session = self._add(meeting_ids[0], start, start + 1800)
            session.attendee_count, session.recording = 0, None
