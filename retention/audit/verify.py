"""`audit verify`: recompute the chain, check schema, checkpoints and outcomes; name faults."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from retention.audit.checkpoint import Checkpoint, CheckpointLines, read_checkpoint_file
from retention.audit.head import HeadMark, WrittenHead, compare_written
from retention.audit.keys import KeyRing
from retention.audit.outcome_checks import outcome_problems
from retention.audit.store import (
    GENESIS_HASH,
    connect_reader,
    read_meta,
    schema_problems,
    unsealed_end,
    walk_chain,
)

# Findings that make the signature state `invalid` (DECISIONS.md).
SIGNATURE_FINDINGS = frozenset(
    {"checkpoint_signature", "checkpoint_unsigned", "checkpoint_malformed"}
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: a stable code, the row it concerns (if any) and a sentence for people."""

    code: str
    message: str
    seq: int | None = None
    expected: str | None = None
    found: str | None = None
    line: int | None = None


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
    key_ids: list[str] = field(default_factory=list)
    keys_used: list[str] = field(default_factory=list)
    previous_log_id: str | None = None
    external_checkpoints: int = 0
    latest_external: dict[str, Any] | None = None
    pending_intents: list[int] = field(default_factory=list)
    written_head: dict[str, Any] | None = None
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        """True only when nothing at all was found wrong."""
        return not self.findings

    @property
    def signature_state(self) -> str:
        """`not_checked` (no key given), `invalid` (a signature failed or missing), `verified`."""
        if not self.signatures_checked:
            return "not_checked"
        if any(f.code in SIGNATURE_FINDINGS for f in self.findings):
            return "invalid"
        return "verified"

    @property
    def result(self) -> str:
        """The one-line verdict: clean with or without signatures checked, or the findings."""
        if self.findings:
            codes = sorted({f.code for f in self.findings})
            return f"NOT CLEAN ({len(self.findings)} findings: {', '.join(codes)})"
        if self.signature_state == "verified":
            return f"CLEAN, signatures verified (keys {', '.join(self.keys_used) or 'none needed'})"
        return "CLEAN, signatures not checked (no public key given)"

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
        data["signature_state"] = self.signature_state
        data["result"] = self.result
        data["first_bad_row"] = asdict(bad) if (bad := self.first_bad_row) else None
        data["rows_per_second"] = round(self.rows / self.seconds) if self.seconds else None
        return data


@dataclass
class _Checkpoints:
    """What the chain pass needs to know about checkpoints as it streams."""

    keys: KeyRing
    log_id: str | None
    file: CheckpointLines
    wanted_heads: dict[int, str | None] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("total", "valid", "invalid", "unsigned"), 0)
    )
    seen_signed: bool = False
    keys_used: set[str] = field(default_factory=set)


def verify_log(
    path: Path,
    *,
    checkpoint_file: Path | None = None,
    keys: KeyRing | None = None,
    last_head: WrittenHead | None = None,
    written: HeadMark | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify the log at `path`; read-only. Unreadable inputs raise AuditInputError (exit 2).

    `last_head`, the seal the service last wrote (from its state database), must be in the log;
    the record must end at `written`, the written head, or just before its last commit.
    `progress` hears (rows checked, rows in the log) as the chain is walked.
    """
    keys = keys or KeyRing()
    lines = read_checkpoint_file(checkpoint_file) if checkpoint_file else CheckpointLines([], [])
    conn = connect_reader(path)
    report = VerifyReport(path=str(path), signatures_checked=bool(keys), key_ids=keys.ids)
    started = time.perf_counter()
    try:
        # One read transaction: a snapshot, so appends made meanwhile do not confuse the pass.
        conn.execute("BEGIN")
        _check_database(conn, report)
        if not report.schema or "table events is missing" not in report.schema:
            state = _Checkpoints(keys, report.log_id, lines)
            state.wanted_heads = {c.rows: None for _line, c in lines.checkpoints}
            if last_head is not None:
                state.wanted_heads[last_head.rows] = None
            _check_chain(conn, report, state, progress)
            if last_head is not None:
                _check_last_head(report, state, last_head)
            if written is not None:
                _check_written(conn, report, written)
            _check_external(report, state, checkpoint_file)
            report.pending_intents, problems = outcome_problems(conn)
            for code, message, seq in problems:
                report.add(code, message, seq=seq)
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


# Rows between two progress reports: a report costs nothing beside a row's hash at this pace.
_PROGRESS_ROWS = 4096


def _check_chain(
    conn: sqlite3.Connection,
    report: VerifyReport,
    state: _Checkpoints,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Stream every row once: sequence, link to the previous hash, own hash, checkpoints."""
    expected_seq, previous, valid = 1, GENESIS_HASH, 0
    wanted = state.wanted_heads
    total = 0
    if progress is not None:  # the last row's seq: an index lookup, not a count
        total = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
    for seq, moment, event, data, prev_hash, stored, computed in walk_chain(conn):
        if progress is not None and not report.rows % _PROGRESS_ROWS:
            progress(report.rows, total)
        if seq != expected_seq:
            report.add(
                "gap",
                f"rows {expected_seq}..{seq - 1} are missing",
                seq=expected_seq,
                expected=str(expected_seq),
                found=str(seq),
            )
        good = prev_hash == previous
        if not good:
            report.add(
                "broken_link",
                f"row {seq}: prev_hash does not match the hash of the row before it",
                seq=seq,
                expected=previous,
                found=prev_hash,
            )
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
        if event == "checkpoint":
            _check_checkpoint_row(report, state, seq, previous, data)
        elif event == "log_started" and seq == 1:
            report.previous_log_id = _previous_log(data)
        if seq in wanted:
            wanted[seq] = stored
        if report.first_seq is None:
            report.first_seq, report.first_time = seq, moment
        report.last_seq, report.last_time = seq, moment
        report.rows += 1
        expected_seq, previous = seq + 1, stored
    report.head_hash, report.valid_rows = previous, valid
    report.checkpoints = state.counts
    signed = state.counts["valid"] + state.counts["invalid"]
    lost = not state.counts["total"] and unsealed_end(conn) is not None  # its seals removed
    if state.keys and (lost or (state.counts["total"] and not signed)):
        report.add("checkpoint_unsigned", "no checkpoint in the log is signed by a given key")


def _check_last_head(report: VerifyReport, state: _Checkpoints, head: WrittenHead) -> None:
    if report.log_id is not None and head.log_id != report.log_id:
        report.add(
            "state_head",
            f"the service last sealed log {head.log_id}; this record is log {report.log_id}:"
            " it was replaced",
        )
    elif head.rows > report.rows:
        report.add(
            "state_head",
            f"the service last sealed {head.rows} rows; the log has {report.rows}",
            expected=str(head.rows),
            found=str(report.rows),
        )
    elif head.rows and state.wanted_heads.get(head.rows) != head.head:
        report.add(
            "state_head",
            f"row {head.rows} does not hash to {head.head[:16]}…, the head the service last sealed",
            seq=head.rows,
            expected=head.head,
            found=state.wanted_heads.get(head.rows),
        )


def _check_written(conn: sqlite3.Connection, report: VerifyReport, mark: HeadMark) -> None:
    """Compare the record's end with the written head kept in the state database."""
    length = int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def hash_at(seq: int) -> str | None:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchone()
        return None if row is None else str(row[0])

    found = compare_written(mark, report.log_id or "", length, hash_at)
    report.written_head = {
        "log_id": mark.log_id,
        "rows": mark.intended.rows,
        "head": mark.intended.hash,
        "previous_rows": mark.previous.rows,
        "previous_head": mark.previous.hash,
        "record_rows": length,
        "matches": found is None,
    }
    if found is not None:
        code = "state_head" if found.finding == "replaced_log" else found.finding
        first = found.rows[0] if found.rows else None
        report.add(
            code, found.message, seq=first, expected=str(mark.intended.rows), found=str(length)
        )


def _previous_log(data: str) -> str | None:
    try:
        value = json.loads(data).get("previous_log_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


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
    _check_signature(report, state, sealed, f"row {seq}", seq=seq)


def _check_signature(
    report: VerifyReport, state: _Checkpoints, sealed: Checkpoint, where: str, **at: Any
) -> None:
    """Unsigned before the first signed checkpoint predates the key; after it, it was stripped."""
    in_log = "seq" in at
    if sealed.signature is None:
        if in_log:
            state.counts["unsigned"] += 1
        if state.seen_signed:
            report.add(
                "checkpoint_unsigned",
                f"{where}: checkpoint is not signed, after a signed one",
                **at,
            )
        return
    state.seen_signed = True
    if not state.keys:
        return
    signer = state.keys.signer(sealed)
    if signer is not None:
        state.keys_used.add(signer)
        if in_log:
            state.counts["valid"] += 1
        return
    if in_log:
        state.counts["invalid"] += 1
    report.add(
        "checkpoint_signature",
        f"{where}: checkpoint signature (key {sealed.key_id or '?'}) does not verify under"
        f" any given key ({', '.join(state.keys.ids)})",
        **at,
    )


def _check_external(report: VerifyReport, state: _Checkpoints, source: Path | None) -> None:
    """Each line of the external file must match the log: same log, rows present, same head."""
    for line, problem in state.file.malformed:
        report.add(
            "checkpoint_malformed",
            f"{source}:{line}: not a checkpoint line ({problem})",
            line=line,
        )
    ours = state.file.of_log(state.log_id)
    report.external_checkpoints = len(ours)
    state.seen_signed = False
    for line, sealed in state.file.checkpoints:
        if sealed.log_id == state.log_id or state.log_id is None:
            continue
        if sealed.log_id != report.previous_log_id:
            report.add(
                "external_checkpoint",
                f"{source}:{line}: checkpoint belongs to log {sealed.log_id}, which this log"
                " does not name as its predecessor",
                line=line,
            )
    for line, sealed in ours:
        where = f"{source}:{line}"
        _check_signature(report, state, sealed, where, line=line)
        found = state.wanted_heads.get(sealed.rows)
        if sealed.rows > (report.last_seq or 0):
            report.add(
                "truncated",
                f"{where}: checkpoint of {sealed.time} covers {sealed.rows} rows but the log"
                f" has {report.rows}: the tail was truncated or an older copy restored",
                expected=str(sealed.rows),
                found=str(report.rows),
                line=line,
            )
        elif sealed.rows and found is None:
            report.add("external_checkpoint", f"{where}: row {sealed.rows} is missing", line=line)
        elif sealed.rows and found != sealed.head:
            report.add(
                "external_checkpoint",
                f"{where}: row {sealed.rows} hashes to {str(found)[:16]}…, the checkpoint"
                f" of {sealed.time} says {sealed.head[:16]}…",
                seq=sealed.rows,
                expected=sealed.head,
                found=found,
                line=line,
            )
    report.keys_used = sorted(state.keys_used)
    if ours:
        latest = ours[-1][1]
        report.latest_external = {"rows": latest.rows, "head": latest.head, "time": latest.time}
