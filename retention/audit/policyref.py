"""`policy_loaded` in full or as a reference: a run whose policy set is unchanged names the row.

A full event holds the files' names, hashes and texts, the policies' content hashes and the
holds, and `policy_set_hash`, the hash of those three (their canonical JSON). A run whose set
hashes the same writes `{"policy_set_hash": H, "same_as": SEQ}` instead, SEQ being the full
event it repeats: an earlier `policy_loaded` of the same log with that hash. `audit verify`
reports a reference that names anything else (`dangling_policy_ref`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

from retention.audit.store import event_data
from retention.canonical import canonical_hash

# The referring rows, then whether what each names is an earlier full event with its hash.
# json_extract fails on text that is not JSON: `bad_data` reports such rows, this skips them.
_DANGLING = """
WITH loaded AS (
    SELECT seq,
        CASE WHEN json_valid(data) THEN json_extract(data, '$.same_as') END AS same_as,
        CASE WHEN json_valid(data) THEN json_type(data, '$.same_as') END AS same_as_type,
        CASE WHEN json_valid(data) THEN json_extract(data, '$.policy_set_hash') END AS digest,
        CASE WHEN json_valid(data) THEN json_type(data, '$.files') END AS files
    FROM events WHERE event = 'policy_loaded'
)
SELECT r.seq, r.same_as FROM loaded AS r
WHERE r.same_as_type IS NOT NULL AND (r.same_as_type != 'integer' OR NOT EXISTS (
    SELECT 1 FROM loaded AS t
    WHERE t.seq = r.same_as AND t.seq < r.seq AND t.files = 'array' AND t.digest = r.digest
))
ORDER BY r.seq
"""


def policy_set_hash(data: Mapping[str, Any]) -> str:
    """The hash a full event's `files`, `policies` and `holds` give (its `policy_set_hash`)."""
    return canonical_hash({key: data[key] for key in ("files", "policies", "holds")})


def policy_loaded_data(conn: sqlite3.Connection, full: Mapping[str, Any]) -> dict[str, Any]:
    """What to record for the set `full` describes: a reference when the last event had it."""
    digest = policy_set_hash(full)
    last = conn.execute(
        "SELECT seq, data FROM events WHERE event = 'policy_loaded' ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if last is not None:
        seq, text = last
        earlier = event_data(text)
        if earlier.get("policy_set_hash") == digest:
            target = earlier.get("same_as", seq)
            if isinstance(target, int) and not isinstance(target, bool):
                return {"policy_set_hash": digest, "same_as": target}
    return {"policy_set_hash": digest, **full}


def resolve(conn: sqlite3.Connection, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A `policy_loaded` event's data in full: a reference's target, else the data itself."""
    target = data.get("same_as")
    if not isinstance(target, int):
        return data
    row = conn.execute(
        "SELECT data FROM events WHERE seq = ? AND event = 'policy_loaded'", [target]
    ).fetchone()
    found = event_data(row[0]) if row else {}
    return found if "files" in found else {"files": [], "policies": [], "holds": []}


def dangling_references(conn: sqlite3.Connection) -> list[tuple[str, str, int | None]]:
    """(code, sentence, seq) for each reference that names no earlier full event of its set."""
    return [
        (
            "dangling_policy_ref",
            f"row {seq}: policy_loaded refers to row {target}, which is not an earlier"
            " policy_loaded of the same policy set",
            seq,
        )
        for seq, target in conn.execute(_DANGLING)
    ]
