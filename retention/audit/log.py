"""The audit log writer: one typed method per event, each durable when it returns."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlite_utils import Database

from retention.audit import checkpoint as checkpoints
from retention.audit.head import HeadKeeper, HeadMark, RowHead, WrittenHead, record_head
from retention.audit.intents import ATTENDEE_ACTIONS, RECORDING_ACTIONS, Intent, pending_intents
from retention.audit.policyref import policy_loaded_data
from retention.audit.store import (
    COLUMNS,
    GENESIS_HASH,
    KEY_COLUMNS,
    AuditError,
    canonical_json,
    connect_writer,
    format_time,
    iso_or_none,
    key_value,
    read_meta,
    row_hash,
    schema_problems,
)
from retention.audit.witness import send_to_witness

__all__ = ["AuditLog", "Head", "Intent", "Outcome", "SubjectMode"]

SubjectMode = Literal["keep", "hash", "omit"]
Outcome = Literal["deleted", "already_absent", "failed", "skipped_hold", "skipped_changed"]
# Built from the fixed column list, never from input.
_INSERT = f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"  # noqa: S608


Subjects = Mapping[int, str | None]  # session id: subject, as the API gave it


@dataclass(frozen=True, slots=True)
class Head:
    """The last row of the log: how many rows it holds and the hash that seals them."""

    rows: int
    hash: str


class AuditLog:
    """The append-only, hash-chained record of every removal; one writer per process."""

    def __init__(
        self,
        db_conn: sqlite3.Connection,
        *,
        path: Path,
        subject_mode: SubjectMode,
        signing_key: Ed25519PrivateKey | None,
        checkpoint_path: Path,
        clock: Callable[[], datetime],
        witness: Sequence[str] | None = None,
        heads: HeadKeeper | None = None,
    ) -> None:
        self._conn = db_conn
        self.path = path
        self.subject_mode = subject_mode
        self._signing_key = signing_key
        self.checkpoint_path = checkpoint_path
        self._clock = clock
        meta = read_meta(db_conn)
        self.log_id = meta["log_id"]
        self._salt = bytes.fromhex(meta["subject_salt"])
        self._in_transaction = False
        self._witness = list(witness) if witness else None
        self.witness_failures = 0
        self._heads = heads
        self._adopting = False

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        subject_mode: SubjectMode,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoint_path: Path | None = None,
        clock: Callable[[], datetime],
        witness: Sequence[str] | None = None,
        state_db: Path | None = None,
    ) -> Self:
        """Open or create the log at `path`; refuse one whose append-only schema was altered.

        With `state_db`, the written head is kept there before each commit (`audit/head.py`),
        and an append to a record that no longer ends where this service left it is refused.
        """
        db = connect_writer(path)
        problems = schema_problems(db.conn)
        if problems:
            db.close()
            raise AuditError(
                f"the audit record {path} has an altered schema: {'; '.join(problems)}",
                hint="run `retention audit verify` and keep this file as evidence;"
                " start a new record only after investigating",
            )
        try:
            heads = HeadKeeper.open(state_db) if state_db is not None else None
        except sqlite3.Error as exc:
            db.close()
            raise AuditError(
                f"cannot keep the written head in {state_db}: {exc}",
                hint="check the state directory is writable",
            ) from exc
        return cls(
            db.conn,
            path=path,
            subject_mode=subject_mode,
            signing_key=signing_key,
            checkpoint_path=checkpoint_path or path.parent / "audit-checkpoints.jsonl",
            clock=clock,
            witness=witness,
            heads=heads,
        )

    def close(self) -> None:
        """Close the connection (every event is already committed)."""
        self._conn.close()
        if self._heads is not None:
            self._heads.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLog(path={str(self.path)!r}, subject_mode={self.subject_mode!r})"

    @contextmanager
    def transaction(self, what: str) -> Iterator[None]:
        """The appends inside are one IMMEDIATE transaction: all committed (fsynced), or none.

        Nested blocks join the outer one. `what` names the appends in the error if it fails.
        """
        if self._in_transaction:
            yield
            return
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            self._in_transaction = True
            try:
                start = self._head()
                self._check_written(start)
                yield
                self._mark_written(start)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._in_transaction = False
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise AuditError(
                f"the audit record {self.path} refused {what}: {exc}",
                hint="nothing was removed for this event; check the disk and run"
                " `retention audit verify`",
            ) from exc

    def _check_written(self, start: Head) -> None:
        """The record ends where this service left it, or nothing is appended (nor signed)."""
        if self._heads is None or self._adopting:
            return
        found = self._heads.check_start(self.log_id, start.rows, self._hash_at)
        if found is not None:
            raise AuditError(
                f"the audit record {self.path} changed under this service: {found.message}",
                hint="nothing more is written; run `retention audit verify --state-dir DIR`"
                ' and see docs/audit.md, "The written head"',
                reason="audit_unverified",
            )

    def _mark_written(self, start: Head) -> None:
        """Before the commit: the head the record is about to reach, durable in the state."""
        end = self._head()
        if self._heads is not None and end != start:
            self._heads.intend(
                self.log_id, RowHead(start.rows, start.hash), RowHead(end.rows, end.hash)
            )

    def _hash_at(self, seq: int) -> str | None:
        row = self._conn.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchone()
        return None if row is None else str(row[0])

    def written_mark(self) -> HeadMark | None:
        """The written head kept in the state database, when this log keeps one."""
        return None if self._heads is None else self._heads.mark()

    def _append(self, event: str, data: Mapping[str, Any], **columns: Any) -> int:
        """Append one row, in its own transaction unless inside `transaction`."""
        with self.transaction(f"a {event} event"):
            return self._insert(event, data, columns)

    def _insert(self, event: str, data: Mapping[str, Any], columns: Mapping[str, Any]) -> int:
        head = self._head()
        row: dict[str, Any] = dict.fromkeys(COLUMNS)
        row.update(columns)
        row.update({name: key_value(row[name]) for name in KEY_COLUMNS})
        row.update(
            seq=head.rows + 1,
            time=format_time(self._clock()),
            event=event,
            data=canonical_json(data).decode(),
            prev_hash=head.hash,
        )
        row["hash"] = row_hash(head.hash, row)
        self._conn.execute(_INSERT, [row[column] for column in COLUMNS])
        return head.rows + 1

    def _head(self) -> Head:
        last = self._conn.execute(
            "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return Head(0, GENESIS_HASH) if last is None else Head(last[0], last[1])

    def head(self) -> Head:
        """The current row count and head hash."""
        return self._head()

    def subject_value(self, subject: str | None) -> str | None:
        """The subject as this log stores it: kept, HMAC-SHA256 with the log's salt, or omitted."""
        if subject is None or self.subject_mode == "omit":
            return None
        if self.subject_mode == "keep":
            return subject
        return hmac.new(self._salt, subject.encode(), hashlib.sha256).hexdigest()

    def run_started(self, *, run_id: str, trigger: str, settings_summary: Mapping[str, Any]) -> int:
        """A run began: what started it and the settings that shape it (no secrets)."""
        return self._append(
            "run_started", {"trigger": trigger, "settings": dict(settings_summary)}, run=run_id
        )

    def policy_loaded(
        self,
        *,
        run_id: str,
        files: Sequence[tuple[str, str, str]],
        policies: Sequence[tuple[str, str]],
        holds: Sequence[tuple[str, str, date | None]],
    ) -> int:
        """The policy and hold files in force: (name, sha256, text), policies and holds; a
        reference to the last such event instead when the set is the same (audit/policyref.py)."""
        full = {
            "files": [{"name": n, "sha256": h, "text": t} for n, h, t in files],
            "policies": [{"name": n, "hash": h} for n, h in policies],
            "holds": [{"id": i, "reason": r, "expires": iso_or_none(e)} for i, r, e in holds],
        }
        with self.transaction("a policy_loaded event"):
            data = policy_loaded_data(self._conn, full)
            return self._insert("policy_loaded", data, {"run": run_id})

    def plan_approved(
        self,
        *,
        run_id: str,
        plan_id: str,
        plan_hash: str,
        approved_by: str,
        as_of: datetime | None = None,
        approvers: Sequence[Mapping[str, str]] | None = None,
        exclusions: Sequence[Mapping[str, str]] | None = None,
    ) -> int:
        """A plan was approved for execution: by whom (a person or `--yes`/the schedule), the
        time it decided as of, the named approvers whose signatures it carried, and the removals
        they postponed (who postponed each, why and until when)."""
        data: dict[str, Any] = {
            "plan_hash": plan_hash,
            "approved_by": approved_by,
            "as_of": iso_or_none(as_of),
        }
        if approvers:
            data["approvers"] = [dict(a) for a in approvers]
        if exclusions:
            data["exclusions"] = [dict(e) for e in exclusions]
        return self._append("plan_approved", data, run=run_id, plan=plan_id)

    def plan_review(
        self,
        event: Literal["plan_proposed", "plan_expired"],
        *,
        run_id: str,
        plan_id: str,
        data: Mapping[str, Any],
    ) -> int:
        """Review mode: a plan proposed for approval (hash, counts, file), or one that expired."""
        return self._append(event, dict(data), run=run_id, plan=plan_id)

    def intent(
        self,
        *,
        run_id: str,
        plan_id: str,
        policy: str,
        policy_hash: str,
        action: str,
        organizer_key: int,
        meeting_id: int,
        session_id: int,
        subject: str | None,
        start_time: datetime | None,
        end_time: datetime | None,
        recording_ids: Sequence[str],
        recording_bytes: int | None,
        attendee_count: int | None,
        as_of: datetime | None = None,
        due_at: datetime | None = None,
    ) -> int:
        """Record a removal about to be sent; returns its seq, for the matching outcome.

        The caller passes every fact it has; the row keeps only what this action removes:
        recordings for `delete_recordings`, the attendee list for `delete_attendees`, both for
        `delete_session`. So no total read from the record counts a recording twice.
        """
        data: dict[str, Any] = {
            "policy_hash": policy_hash,
            "subject": self.subject_value(subject),
            "subject_mode": self.subject_mode,
            "start_time": iso_or_none(start_time),
            "end_time": iso_or_none(end_time),
            "as_of": iso_or_none(as_of),
        }
        if due_at is not None:
            data["due_at"] = iso_or_none(due_at)
        if action in RECORDING_ACTIONS:
            data["recording_ids"] = list(recording_ids)
            data["recording_bytes"] = recording_bytes
        if action in ATTENDEE_ACTIONS:
            data["attendee_count"] = attendee_count
        return self._append(
            "intent",
            data,
            run=run_id,
            plan=plan_id,
            policy=policy,
            action=action,
            organizer_key=organizer_key,
            meeting_id=meeting_id,
            session_id=session_id,
        )

    def outcome(
        self, *, intent_seq: int, outcome: Outcome, status: int | None, reason: str | None
    ) -> int:
        """Record what became of an intent; a second outcome for one intent is refused."""
        if outcome == "failed" and not reason:
            raise AuditError(f"a failed outcome for intent {intent_seq} needs a reason")
        intent = self._conn.execute(
            "SELECT run, plan, policy, action, organizer_key, meeting_id, session_id"
            " FROM events WHERE seq = ? AND event = 'intent'",
            [intent_seq],
        ).fetchone()
        if intent is None:
            raise AuditError(f"outcome refused: row {intent_seq} is not an intent")
        taken = self._conn.execute(
            "SELECT seq FROM events WHERE event = 'outcome' AND intent_seq = ?", [intent_seq]
        ).fetchone()
        if taken is not None:
            raise AuditError(
                f"outcome refused: intent {intent_seq} already has its outcome (row {taken[0]})"
            )
        names = ("run", "plan", "policy", "action", "organizer_key", "meeting_id", "session_id")
        return self._append(
            "outcome",
            {"status": status, "reason": reason},
            intent_seq=intent_seq,
            outcome=outcome,
            **dict(zip(names, intent, strict=True)),
        )

    def refused(self, *, run_id: str, reason: str, details: Mapping[str, Any]) -> int:
        """A safety cap or a changed plan stopped a run before any removal."""
        return self._append("refused", {"reason": reason, "details": dict(details)}, run=run_id)

    def hold_blocked(
        self, *, run_id: str, hold_id: str, sessions: Sequence[int], actions: Mapping[str, int]
    ) -> int:
        """A legal hold kept these sessions; `actions` counts the removals it blocked, by kind."""
        data = {"hold": hold_id, "sessions": sorted(sessions), "actions": dict(actions)}
        return self._append("hold_blocked", data, run=run_id)

    def reappeared(
        self,
        *,
        run_id: str,
        action: str,
        organizer_key: int,
        meeting_id: int,
        session_id: int,
        deleted_seq: int | None,
        seen: Mapping[str, Any],
    ) -> int:
        """What a removal said was gone, a later scan saw again: the outcome that said `deleted`
        (`deleted_seq`, None when none did) and what the scan saw."""
        data = {"deleted_seq": deleted_seq, "seen": dict(seen)}
        return self._append(
            "reappeared",
            data,
            run=run_id,
            action=action,
            organizer_key=organizer_key,
            meeting_id=meeting_id,
            session_id=session_id,
        )

    def last_removal(self, session_id: int, action: str) -> tuple[int, str, str] | None:
        """The last outcome that removed `action` on the session (`deleted` or
        `already_absent`): its seq, time and outcome; None when the record has none."""
        row = self._conn.execute(
            "SELECT seq, time, outcome FROM events WHERE event = 'outcome'"
            " AND outcome IN ('deleted', 'already_absent') AND action = ?"
            " AND CAST(session_id AS TEXT) = ? ORDER BY seq DESC LIMIT 1",
            [action, str(session_id)],
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]), str(row[2]))

    def notice_sent(
        self, *, run_id: str, organizer_key: int, sessions: Subjects, counts: Mapping[str, int]
    ) -> int:
        """An organizer was told of removals: sessions (id: subject), counts; never an address."""
        data: dict[str, Any] = {"sessions": sorted(sessions), "actions": dict(counts)}
        if self.subject_mode != "omit":
            data["subjects"] = {str(sid): self.subject_value(s) for sid, s in sessions.items()}
        return self._append("notice_sent", data, run=run_id, organizer_key=organizer_key)

    def hold_scope_left(
        self, *, run_id: str, hold_id: str, organizer_key: int, sessions: int
    ) -> int:
        """A hold keeps `sessions` of an organizer who left its scope (never an address)."""
        data = {"hold": hold_id, "sessions": sessions}
        return self._append("hold_scope_left", data, run=run_id, organizer_key=organizer_key)

    def run_finished(
        self,
        *,
        run_id: str,
        counts: Mapping[str, int],
        result: str,
        overdue: Mapping[str, Any] | None = None,
    ) -> int:
        """A run ended: its counts (planned, deleted, failed, …), its result, and when it
        decided the whole inventory, what was overdue per policy (audit/timeliness.py)."""
        data: dict[str, Any] = {"counts": dict(counts), "result": result}
        if overdue is not None:
            data["overdue"] = dict(overdue)
        return self._append("run_finished", data, run=run_id)

    def log_started(
        self, *, previous_log_id: str | None, previous_head: Head | None, reason: str
    ) -> int:
        """The first row of a log started on purpose: the log it follows, its last head, why."""
        if self._head().rows:
            raise AuditError(f"the audit record {self.path} is not empty; a new log starts empty")
        head = (
            None
            if previous_head is None
            else {"rows": previous_head.rows, "head": previous_head.hash}
        )
        data = {"previous_log_id": previous_log_id, "previous_head": head, "reason": reason}
        return self._append("log_started", data)

    def adopted(self, *, mark: HeadMark, reason: str) -> int:
        """Accept the record as it is: an `adopted` row naming the head this service wrote and
        the head the record has, and why; the written head then moves past it."""
        if self._heads is None:
            raise AuditError("adopting a record needs the state database that keeps its head")
        self._adopting = True
        try:
            with self.transaction("an adopted event"):
                found = self._head()
                data = {
                    "written_head": {
                        "log_id": mark.log_id,
                        "rows": mark.intended.rows,
                        "head": mark.intended.hash,
                        "previous_rows": mark.previous.rows,
                        "previous_head": mark.previous.hash,
                    },
                    "record_head": {"rows": found.rows, "head": found.hash},
                    "reason": reason,
                }
                return self._insert("adopted", data, {})
        finally:
            self._adopting = False

    def checkpoint(self, *, state: Database | None = None) -> checkpoints.Checkpoint:
        """Seal the rows so far as a row, a checkpoint-file line and a log line; signed if keyed.

        With `state` (the state database) the head is remembered there, for the check before
        the next write; a witness command, if set, then gets the line (its failure is logged
        and counted, never raised).
        """
        with self.transaction("a checkpoint"):
            head = self._head()
            sealed = checkpoints.seal(
                log_id=self.log_id,
                rows=head.rows,
                head=head.hash,
                time=format_time(self._clock()),
                key=self._signing_key,
            )
            seq = self._insert("checkpoint", sealed.payload(), {})
        line = checkpoints.append_to_file(self.checkpoint_path, sealed, seq=seq)
        checkpoints.log_checkpoint(sealed, seq=seq, path=self.checkpoint_path)
        if state is not None:
            signed = sealed.signature is not None
            written = WrittenHead(sealed.log_id, sealed.rows, sealed.head, signed)
            record_head(state, written, time=sealed.time)
        if self._witness and not send_to_witness(self._witness, line):
            self.witness_failures += 1
        return sealed

    def pending_intents(self) -> list[Intent]:
        """Intents without an outcome, oldest first: what crash recovery must reconcile."""
        return pending_intents(self._conn)
