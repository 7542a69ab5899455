"""`audit verify`: recompute the chain, check schema, checkpoints and outcomes; name faults."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from retention.audit.checkpoint import Checkpoint, read_checkpoint_file
from retention.audit.store import (
    GENESIS_HASH,
    HASHED_COLUMNS,
    connect_reader,
    read_meta,
    schema_problems,
)

_LISTED = 20  # how many seqs a finding quotes before summarising the rest
_SELECT_CHAIN = f"SELECT {', '.join(HASHED_COLUMNS)}, hash FROM events ORDER BY seq"  # noqa: S608
_SEQ = HASHED_COLUMNS.index("seq")
_PREV = HASHED_COLUMNS.index("prev_hash")
_EVENT = HASHED_COLUMNS.index("event")
_DATA = HASHED_COLUMNS.index("data")
_TIME = HASHED_COLUMNS.index("time")
# The row dict is built in HASHED_COLUMNS order, which is sorted: this encoder's output is
# canonical_json() byte for byte, without re-sorting keys or building an encoder per row.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: a stable code, the row it concerns (if any) and a sentence for people."""

    code: str
    message: str
    seq: int | None = None
    expected: str | None = None
    found: str | None = None


@dataclass
class VerifyReport:
    """Everything verify checked, in the manner of CloudTrail's validate-logs."""

    path: str
    log_id: str | None = None
    rows: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_time: str | None = None
    last_time: str | None = None
    head_hash: str = GENESIS_HASH
    valid_rows: int = 0
    integrity: str = "not run"
    schema: list[str] = field(default_factory=list)
    checkpoints: dict[str, int] = field(default_factory=dict)
    signatures_checked: bool = False
    external_checkpoints: int = 0
    latest_external: dict[str, Any] | None = None
    pending_intents: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """True only when nothing at all was found wrong."""
        return not self.findings

    @property
    def first_bad_row(self) -> Finding | None:
        """The first row whose hash or link does not verify."""
        rows = [f for f in self.findings if f.code in {"bad_hash", "broken_link"}]
        return min(rows, key=lambda f: f.seq or 0) if rows else None

    def add(self, code: str, message: str, **where: Any) -> None:
        self.findings.append(Finding(code, message, **where))

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (for `--format json`)."""
        data = asdict(self)
        data["clean"] = self.clean
        data["first_bad_row"] = asdict(bad) if (bad := self.first_bad_row) else None
        data["rows_per_second"] = round(self.rows / self.seconds) if self.seconds else None
        return data


@dataclass
class _Checkpoints:
    """What the chain pass needs to know about checkpoints as it streams."""

    public_key: Ed25519PublicKey | None
    log_id: str | None
    external: list[tuple[int, Checkpoint]]
    wanted_heads: dict[int, str | None] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("total", "valid", "invalid", "unsigned"), 0)
    )
    seen_signed: bool = False


def verify_log(
    path: Path,
    *,
    checkpoint_file: Path | None = None,
    public_key: Ed25519PublicKey | None = None,
) -> VerifyReport:
    """Verify the log at `path`; read-only. Unreadable inputs raise AuditInputError (exit 2)."""
    external = read_checkpoint_file(checkpoint_file) if checkpoint_file else []
    conn = connect_reader(path)
    report = VerifyReport(path=str(path), signatures_checked=public_key is not None)
    started = time.perf_counter()
    try:
        # One read transaction: a snapshot, so appends made meanwhile do not confuse the pass.
        conn.execute("BEGIN")
        _check_database(conn, report)
        if not report.schema or "table events is missing" not in report.schema:
            state = _Checkpoints(public_key, report.log_id, external)
            state.wanted_heads = {c.rows: None for _line, c in external}
            _check_chain(conn, report, state)
            _check_external(report, state, checkpoint_file)
            _check_outcomes(conn, report)
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        report.add("unreadable", f"the database could not be read to the end: {exc}")
    finally:
        conn.close()
    report.seconds = time.perf_counter() - started
    return report


def _check_database(conn: sqlite3.Connection, report: VerifyReport) -> None:
    results = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    report.integrity = "ok" if results == ["ok"] else "; ".join(results[:5])
    if results != ["ok"]:
        report.add("integrity", f"PRAGMA integrity_check failed: {report.integrity}")
    report.schema = schema_problems(conn)
    for problem in report.schema:
        report.add("schema", f"schema: {problem}")
    try:
        report.log_id = read_meta(conn).get("log_id")
    except sqlite3.DatabaseError:
        report.log_id = None


def _rows(conn: sqlite3.Connection) -> Iterator[tuple[Any, ...]]:
    cursor = conn.execute(_SELECT_CHAIN)
    while batch := cursor.fetchmany(2048):
        yield from batch


def _check_chain(conn: sqlite3.Connection, report: VerifyReport, state: _Checkpoints) -> None:
    """Stream every row once: sequence, link to the previous hash, own hash, checkpoints."""
    expected_seq, previous, gaps, valid = 1, GENESIS_HASH, 0, 0
    sha256, encode, wanted = hashlib.sha256, _ENCODE, state.wanted_heads
    for row in _rows(conn):
        seq, stored = row[_SEQ], row[-1]
        if seq != expected_seq:
            gaps += 1
            report.add(
                "gap",
                f"rows {expected_seq}..{seq - 1} are missing",
                seq=expected_seq,
                expected=str(expected_seq),
                found=str(seq),
            )
        prev_hash = row[_PREV]
        good = prev_hash == previous
        if not good:
            report.add(
                "broken_link",
                f"row {seq}: prev_hash does not match the hash of the row before it",
                seq=seq,
                expected=previous,
                found=prev_hash,
            )
        body = encode(dict(zip(HASHED_COLUMNS, row, strict=False))).encode()
        try:
            computed = sha256(bytes.fromhex(prev_hash) + body).hexdigest()
        except (TypeError, ValueError):
            computed = sha256(str(prev_hash).encode() + body).hexdigest()
        if computed != stored:
            good = False
            report.add(
                "bad_hash",
                f"row {seq}: stored hash does not match its contents",
                seq=seq,
                expected=computed,
                found=stored,
            )
        valid += good
        if row[_EVENT] == "checkpoint":
            _check_checkpoint_row(report, state, seq, previous, row[_DATA])
        if seq in wanted:
            wanted[seq] = stored
        if report.first_seq is None:
            report.first_seq, report.first_time = seq, row[_TIME]
        report.last_seq, report.last_time = seq, row[_TIME]
        report.rows += 1
        expected_seq, previous = seq + 1, stored
    report.head_hash, report.valid_rows = previous, valid
    report.checkpoints = state.counts
    signed = state.counts["valid"] + state.counts["invalid"]
    if state.public_key is not None and state.counts["total"] and not signed:
        report.add("checkpoint_unsigned", "no checkpoint in the log is signed by the given key")


def _check_checkpoint_row(
    report: VerifyReport, state: _Checkpoints, seq: int, previous: str, data: str
) -> None:
    state.counts["total"] += 1
    try:
        sealed = Checkpoint.from_payload(json.loads(data))
    except (ValueError, KeyError, TypeError):
        report.add("checkpoint_malformed", f"row {seq}: checkpoint data is malformed", seq=seq)
        return
    if sealed.rows != seq - 1 or sealed.head != previous:
        report.add(
            "checkpoint_mismatch",
            f"row {seq}: checkpoint says {sealed.rows} rows with head {sealed.head[:16]}…,"
            f" the chain has {seq - 1} rows with head {previous[:16]}…",
            seq=seq,
            expected=previous,
            found=sealed.head,
        )
    if state.log_id is not None and sealed.log_id != state.log_id:
        report.add("checkpoint_mismatch", f"row {seq}: checkpoint names another log", seq=seq)
    if sealed.signature is None:
        state.counts["unsigned"] += 1
        # Unsigned checkpoints before the first signed one predate the key; after it, a
        # missing signature means someone stripped it.
        if state.public_key is not None and state.seen_signed:
            report.add("checkpoint_unsigned", f"row {seq}: checkpoint is not signed", seq=seq)
        return
    if state.public_key is None:
        return
    if sealed.signature_valid(state.public_key):
        state.counts["valid"] += 1
        state.seen_signed = True
    else:
        state.counts["invalid"] += 1
        report.add(
            "checkpoint_signature",
            f"row {seq}: checkpoint signature is not valid for the given public key",
            seq=seq,
        )


def _check_external(report: VerifyReport, state: _Checkpoints, source: Path | None) -> None:
    """Each line of the external file must match the log: same log, rows present, same head."""
    report.external_checkpoints = len(state.external)
    for line, sealed in state.external:
        where = f"{source}:{line}"
        if state.log_id is not None and sealed.log_id != state.log_id:
            report.add("external_checkpoint", f"{where}: checkpoint belongs to another log")
            continue
        if state.public_key is not None and not sealed.signature_valid(state.public_key):
            report.add("external_checkpoint", f"{where}: signature missing or not valid")
        found = state.wanted_heads.get(sealed.rows)
        if sealed.rows > (report.last_seq or 0):
            report.add(
                "truncated",
                f"{where}: checkpoint of {sealed.time} covers {sealed.rows} rows but the log"
                f" has {report.rows}: the tail was truncated or an older copy restored",
                expected=str(sealed.rows),
                found=str(report.rows),
            )
        elif sealed.rows and found is None:
            report.add("external_checkpoint", f"{where}: row {sealed.rows} is missing")
        elif sealed.rows and found != sealed.head:
            report.add(
                "external_checkpoint",
                f"{where}: row {sealed.rows} hashes to {str(found)[:16]}…, the checkpoint"
                f" of {sealed.time} says {sealed.head[:16]}…",
                seq=sealed.rows,
                expected=sealed.head,
                found=found,
            )
    if state.external:
        latest = state.external[-1][1]
        report.latest_external = {"rows": latest.rows, "head": latest.head, "time": latest.time}


def _check_outcomes(conn: sqlite3.Connection, report: VerifyReport) -> None:
    """Every intent has exactly one outcome; no session/action was deleted twice."""
    report.pending_intents = [
        seq
        for (seq,) in conn.execute(
            "SELECT i.seq FROM events AS i WHERE i.event = 'intent' AND NOT EXISTS"
            " (SELECT 1 FROM events AS o WHERE o.event = 'outcome' AND o.intent_seq = i.seq)"
            " ORDER BY i.seq"
        )
    ]
    if report.pending_intents:
        report.add(
            "pending_intent",
            f"{len(report.pending_intents)} intents have no outcome (a run crashed or is in"
            f" progress; the next run reconciles them): rows {_listed(report.pending_intents)}",
            seq=report.pending_intents[0],
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
            "SELECT session_id, action, group_concat(seq) FROM events"
            " WHERE event = 'outcome' AND outcome = 'deleted'"
            " GROUP BY session_id, action HAVING count(*) > 1",
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
            report.add(code, sentence.format(*found), seq=seq)


def _listed(seqs: list[int]) -> str:
    shown = ", ".join(str(seq) for seq in seqs[:_LISTED])
    return shown + (f" and {len(seqs) - _LISTED} more" if len(seqs) > _LISTED else "")
