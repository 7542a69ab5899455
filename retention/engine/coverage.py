"""What each legal hold has covered: kept while the hold is in force, whatever the organizer does.

A hold covers a session that matches its scope now, or matched it in any run since the hold took
effect, until the hold is lifted (removed from the folder) or its `expires` passes. Narrowing a
hold's scope releases nothing: lift it and write one under a new id. The state database keeps
(hold id, session id, since); `update_coverage` brings it up to date on current facts before a
run decides, and reports each organizer whose count of sessions kept out of a hold's scope grew
since it was last reported (`hold_scope_left`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlite_utils import Database

from retention.engine import inventory
from retention.engine.decide import Kept
from retention.engine.inventory import from_text, to_text
from retention.policy import PolicySet
from retention.policy.matching import compile_hold


@dataclass(frozen=True)
class ScopeLeft:
    """An organizer whose sessions a hold keeps though they left its scope: how many now."""

    hold_id: str
    organizer_key: int
    sessions: int

    def as_event(self) -> dict[str, object]:
        """The `hold_scope_left` event's data (keys, never an address)."""
        return {
            "hold": self.hold_id,
            "organizerKey": str(self.organizer_key),
            "sessions": self.sessions,
        }


def kept_coverage(db: Database) -> Kept:
    """The holds that covered each session in an earlier run (those still in force are kept)."""
    by_session: dict[int, list[str]] = defaultdict(list)
    for session_id, hold_id in db.execute("SELECT session_id, hold_id FROM hold_coverage"):
        by_session[int(session_id)].append(str(hold_id))

    def kept(session_id: int) -> tuple[str, ...]:
        return tuple(by_session.get(session_id, ()))

    return kept


def covered_since(db: Database, hold_id: str, session_id: int) -> datetime | None:
    """When the hold first covered the session (None: never recorded)."""
    row = db.execute(
        "SELECT since FROM hold_coverage WHERE hold_id = ? AND session_id = ?",
        [hold_id, str(session_id)],
    ).fetchone()
    return None if row is None else from_text(str(row[0]))


def update_coverage(
    db: Database, policy_set: PolicySet, now: datetime, *, report: bool = True
) -> list[ScopeLeft]:
    """Record what each hold in force covers now, release what lifted or expired holds covered,
    and (with `report`) return the organizers whose kept-out-of-scope count grew.

    Reads every session in the inventory once, matching the holds only (no rule).
    """
    active = {hold.id: compile_hold(hold) for hold in policy_set.holds if hold.active_at(now)}
    kept = kept_coverage(db)
    since = to_text(now)
    new_rows: list[tuple[str, str, str, str | None]] = []
    outside: dict[tuple[str, int], int] = defaultdict(int)
    for session in inventory.iter_sessions(db):
        matching = {hold_id for hold_id, hold in active.items() if hold.covers(session)}
        before = set(kept(session.session_id))
        for hold_id in sorted(matching - before):
            new_rows.append((hold_id, str(session.session_id), str(session.organizer_key), since))
        for hold_id in before - matching:
            if hold_id in active:
                outside[(hold_id, session.organizer_key)] += 1
    with db.atomic():
        _release(db, active)
        db.conn.executemany(
            "INSERT OR IGNORE INTO hold_coverage (hold_id, session_id, organizer_key, since) "
            "VALUES (?, ?, ?, ?)",
            new_rows,
        )
        return _grown(db, outside, since) if report else []


def _release(db: Database, active: Iterable[str]) -> None:
    """Coverage of holds lifted or expired goes: they protect nothing any more."""
    ids = sorted(active)
    marks = ", ".join("?" for _ in ids)
    for table in ("hold_coverage", "hold_scope_left"):
        db.execute(
            f"DELETE FROM {table} WHERE hold_id NOT IN ({marks})",  # noqa: S608 (fixed names)
            ids,
        )


def _grown(db: Database, outside: dict[tuple[str, int], int], at: str | None) -> list[ScopeLeft]:
    reported = {
        (str(hold_id), int(organizer_key)): int(sessions)
        for hold_id, organizer_key, sessions in db.execute(
            "SELECT hold_id, organizer_key, sessions FROM hold_scope_left"
        )
    }
    grown = []
    for (hold_id, organizer_key), count in sorted(outside.items()):
        if count <= reported.get((hold_id, organizer_key), 0):
            continue
        grown.append(ScopeLeft(hold_id, organizer_key, count))
        db.execute(
            "INSERT INTO hold_scope_left (hold_id, organizer_key, sessions, reported_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (hold_id, organizer_key) DO UPDATE SET "
            "sessions = excluded.sessions, reported_at = excluded.reported_at",
            [hold_id, str(organizer_key), count, at],
        )
    return grown
