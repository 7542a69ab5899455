"""Intents as the record holds them: which facts each action's row carries, and reading back."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

# What each action removes, hence which facts its intent row holds.
RECORDING_ACTIONS = frozenset({"delete_recordings", "delete_session"})
ATTENDEE_ACTIONS = frozenset({"delete_attendees", "delete_session"})


@dataclass(frozen=True, slots=True)
class Intent:
    """A removal announced before its DELETE was sent, as crash recovery needs to reconcile it."""

    seq: int
    time: str
    run: str
    plan: str
    policy: str
    policy_hash: str
    action: str
    organizer_key: int
    meeting_id: int
    session_id: int
    recording_ids: tuple[str, ...]
    recording_bytes: int | None
    attendee_count: int | None


def intent_from_row(row: tuple[Any, ...]) -> Intent:
    """An intent read back from its row (older rows may hold facts newer ones omit)."""
    seq, time, run, plan, policy, action, organizer, meeting, session, data_text = row
    data = json.loads(data_text)
    return Intent(
        seq=seq,
        time=time,
        run=run,
        plan=plan,
        policy=policy,
        policy_hash=data["policy_hash"],
        action=action,
        # Older rows store keys as integers, newer ones as their digits.
        organizer_key=int(organizer),
        meeting_id=int(meeting),
        session_id=int(session),
        recording_ids=tuple(data.get("recording_ids") or ()),
        recording_bytes=data.get("recording_bytes"),
        attendee_count=data.get("attendee_count"),
    )


def pending_intents(conn: sqlite3.Connection) -> list[Intent]:
    """Intents without an outcome, oldest first: what crash recovery must reconcile."""
    rows = conn.execute(
        "SELECT i.seq, i.time, i.run, i.plan, i.policy, i.action, i.organizer_key,"
        " i.meeting_id, i.session_id, i.data FROM events AS i"
        " WHERE i.event = 'intent' AND NOT EXISTS (SELECT 1 FROM events AS o"
        "  WHERE o.event = 'outcome' AND o.intent_seq = i.seq) ORDER BY i.seq"
    ).fetchall()
    return [intent_from_row(row) for row in rows]
