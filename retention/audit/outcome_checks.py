"""The record's rules: an outcome per intent, none orphaned or twice, no dangling policy ref."""

from __future__ import annotations

import sqlite3

from retention.audit.policyref import dangling_references

_LISTED = 20  # how many seqs a finding quotes before summarising the rest


def outcome_problems(
    conn: sqlite3.Connection,
) -> tuple[list[int], list[tuple[str, str, int | None]]]:
    """The intents without an outcome, and (code, sentence, seq) for each other fault."""
    pending = [
        seq
        for (seq,) in conn.execute(
            "SELECT i.seq FROM events AS i WHERE i.event = 'intent' AND NOT EXISTS"
            " (SELECT 1 FROM events AS o WHERE o.event = 'outcome' AND o.intent_seq = i.seq)"
            " ORDER BY i.seq"
        )
    ]
    problems: list[tuple[str, str, int | None]] = []
    if pending:
        problems.append(
            (
                "pending_intent",
                f"{len(pending)} intents have no outcome (a run crashed or is in"
                f" progress; the next run reconciles them): rows {_listed(pending)}",
                pending[0],
            )
        )
    checks = {
        "duplicate_outcome": (
            "SELECT intent_seq, group_concat(seq) FROM events WHERE event = 'outcome'"
            " GROUP BY intent_seq HAVING count(*) > 1",
            "intent {0} has more than one outcome: rows {1}",
        ),
        "orphan_outcome": (
            "SELECT o.seq, o.intent_seq FROM events AS o WHERE o.event = 'outcome' AND NOT EXISTS"
            " (SELECT 1 FROM events AS i WHERE i.seq = o.intent_seq AND i.event = 'intent')",
            "row {0}: outcome names row {1}, which is not an intent",
        ),
        "deleted_twice": (
            # A removal a later scan saw again (a `reappeared` event names it) may be
            # removed again: only the later `deleted` counts.
            "SELECT CAST(session_id AS TEXT), action, group_concat(seq) FROM events"
            " WHERE event = 'outcome' AND outcome = 'deleted' AND seq NOT IN"
            " (SELECT json_extract(data, '$.deleted_seq') FROM events"
            "  WHERE event = 'reappeared' AND json_extract(data, '$.deleted_seq') IS NOT NULL)"
            " GROUP BY CAST(session_id AS TEXT), action HAVING count(*) > 1",
            "session {0}: {1} has more than one deleted outcome: rows {2}",
        ),
        "bad_data": (
            "SELECT seq FROM events WHERE json_valid(data) = 0 OR json_type(data) != 'object'",
            "row {0}: data is not a JSON object",
        ),
    }
    for code, (sql, sentence) in checks.items():
        for found in conn.execute(sql):
            seq = None if code == "deleted_twice" else found[0]
            problems.append((code, sentence.format(*found), seq))
    problems.extend(dangling_references(conn))
    return pending, problems


def _listed(seqs: list[int]) -> str:
    shown = ", ".join(str(seq) for seq in seqs[:_LISTED])
    return shown + (f" and {len(seqs) - _LISTED} more" if len(seqs) > _LISTED else "")
