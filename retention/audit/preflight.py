"""Check before write: the service verifies its record from a checkpoint it can vouch for."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from retention.audit.checkpoint import (
    CHECKPOINT_FILE,
    Checkpoint,
    CheckpointLines,
    load_signing_key,
    read_checkpoint_file,
)
from retention.audit.head import HeadMark, WrittenHead, compare_written, last_head, written_mark
from retention.audit.keys import KeyRing, load_keyring, trusted_key_paths
from retention.audit.store import (
    GENESIS_HASH,
    AuditInputError,
    connect_reader,
    schema_problems,
    unsealed_end,
    walk_chain,
)
from retention.errors import RuntimeFailure

if TYPE_CHECKING:
    from sqlite_utils import Database

    from retention.settings import Settings

_GENESIS = Checkpoint(log_id="", rows=0, head=GENESIS_HASH, time="")
_HINT = (
    "nothing was scanned, removed or written; run `retention audit verify` and keep the files"
    " as evidence. Once it is clean the service runs again; a lost record is replaced only"
    " on purpose, with `retention audit init --new-log --reason TEXT`"
)
_WRITTEN_HINT = (
    "nothing was scanned, removed or written; run `retention audit verify --state-dir DIR`,"
    ' check the rows it names (docs/audit.md, "The written head"), and once they are'
    " explained accept the record as it is with `retention audit adopt --reason TEXT`"
)


class AuditUnverified(RuntimeFailure):
    """The record cannot be vouched for, so the service refuses to extend or sign it."""

    def __init__(self, message: str, *, finding: str, hint: str = _HINT) -> None:
        super().__init__(
            f"the audit record cannot be verified: {message}", hint=hint, reason="audit_unverified"
        )
        self.finding = finding


@dataclass(frozen=True, slots=True)
class Preflight:
    """What the check covered: the log, the anchor it started from and the rows it hashed."""

    log_id: str | None
    anchor_rows: int
    rows_checked: int
    seconds: float
    head: WrittenHead | None = None


def verify_before_write(
    audit_db: Path,
    checkpoint_path: Path,
    *,
    trusted_keys: Iterable[Ed25519PublicKey] = (),
    signing_key: Ed25519PrivateKey | None = None,
    last_head: WrittenHead | None = None,
    full: bool = False,
    since: WrittenHead | None = None,
    written: HeadMark | None = None,
) -> Preflight:
    """Refuse (AuditUnverified) unless the record chains from a vouched checkpoint to its head.

    Rows sealed by the anchor are vouched for by its head hash; an edit that left their stored
    hashes alone is found by `full=True` (every row rehashed, as `audit verify` does). `since`,
    a head this process verified before (`Preflight.head`), is the anchor instead of the file's:
    the rows after it are rehashed, whatever checkpoint lines were added since. `written`, the
    written head kept in the state database: the record must end at it, or just before the
    commit it was written for (`audit/head.py`).
    Read-only: the log is opened with mode=ro and nothing is written anywhere.
    """
    started = time.perf_counter()
    lines = _lines(checkpoint_path)
    if not audit_db.exists():
        named = (
            {c.log_id for _n, c in lines.checkpoints}
            | ({last_head.log_id} if last_head else set())
            | ({written.log_id} if written else set())
        )
        if named:
            raise AuditUnverified(
                f"{audit_db} is missing, but the checkpoint file or the state database names"
                f" log {', '.join(sorted(named))}",
                finding="missing_log",
            )
        return Preflight(None, 0, 0, time.perf_counter() - started)
    extra = [signing_key.public_key()] if signing_key is not None else []
    keys = load_keyring((), [*trusted_keys, *extra])
    try:
        conn = connect_reader(audit_db)
    except AuditInputError as exc:
        raise AuditUnverified(exc.message, finding="unreadable") from None
    try:
        conn.execute("BEGIN")
        log_id = _log_id(conn, audit_db)
        if last_head is not None and last_head.log_id != log_id:
            raise AuditUnverified(
                f"{audit_db} is log {log_id}, but the service last sealed log {last_head.log_id}",
                finding="replaced_log",
            )
        ours = _our_lines(lines, log_id, checkpoint_path)
        anchor = _anchor(ours, keys, last_head, checkpoint_path)
        length = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        if written is not None:
            _matches_written(conn, written, log_id, length)
        if not ours and last_head is None:
            _never_sealed(conn, audit_db)
        for _line, sealed in ours:
            _matches_row(conn, sealed, length)
        if last_head is not None:
            _matches_row(conn, last_head, length)
        start = _GENESIS if full else _since(conn, since, log_id, length) or anchor
        checked, head = _chain_from(conn, start, seen_signed=False if full else _signed(ours))
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        raise AuditUnverified(f"{audit_db} could not be read: {exc}", finding="unreadable") from exc
    finally:
        conn.close()
    verified = WrittenHead(log_id, start.rows + checked, head)
    return Preflight(log_id, start.rows, checked, time.perf_counter() - started, verified)


def check_record(
    settings: Settings, state: Database, *, full: bool = False, since: WrittenHead | None = None
) -> Preflight:
    """The run's first preflight check: this state directory's record, keys and last seal.

    With `full`, every row is rehashed; else the rows after `since` (a head this process
    verified), or after the checkpoint the file vouches for.
    """
    key = settings.signing_key
    return verify_before_write(
        settings.audit_db,
        settings.state_dir / CHECKPOINT_FILE,
        trusted_keys=load_keyring(trusted_key_paths(settings.trusted_keys)).keys.values(),
        signing_key=load_signing_key(key.get_secret_value()) if key else None,
        last_head=last_head(state),
        full=full,
        since=since,
        written=written_mark(state),
    )


def _matches_written(conn: sqlite3.Connection, written: HeadMark, log_id: str, length: int) -> None:
    """The record ends where the service left it: rows past it, or missing, refuse the run."""

    def hash_at(seq: int) -> str | None:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", [seq]).fetchone()
        return None if row is None else str(row[0])

    found = compare_written(written, log_id, length, hash_at)
    if found is not None:
        hint = _HINT if found.finding == "replaced_log" else _WRITTEN_HINT
        raise AuditUnverified(found.message, finding=found.finding, hint=hint)


def _lines(path: Path) -> CheckpointLines:
    if not path.exists():
        return CheckpointLines([], [])
    lines = read_checkpoint_file(path)
    if lines.malformed:
        number, problem = lines.malformed[0]
        raise AuditUnverified(
            f"{path}:{number}: not a checkpoint line ({problem})", finding="checkpoint_malformed"
        )
    return lines


def _log_id(conn: sqlite3.Connection, path: Path) -> str:
    problems = schema_problems(conn)
    if problems:
        raise AuditUnverified(
            f"{path} has an altered schema: {'; '.join(problems)}", finding="schema"
        )
    row = conn.execute("SELECT value FROM meta WHERE key = 'log_id'").fetchone()
    if row is None:
        raise AuditUnverified(f"{path} names no log id", finding="schema")
    return str(row[0])


def _our_lines(lines: CheckpointLines, log_id: str, path: Path) -> list[tuple[int, Checkpoint]]:
    for number, sealed in lines.checkpoints:
        if sealed.log_id != log_id:
            raise AuditUnverified(
                f"{path}:{number} belongs to log {sealed.log_id}, the record is log {log_id}",
                finding="external_checkpoint",
            )
    return lines.checkpoints


def _anchor(
    ours: list[tuple[int, Checkpoint]],
    keys: KeyRing,
    last_head: WrittenHead | None,
    path: Path,
) -> Checkpoint:
    """The last signed, verified checkpoint when keyed; else the last line, cross-checked."""
    keyed, seen_signed = bool(keys), False
    anchor: Checkpoint | None = None
    for number, sealed in ours:
        if sealed.signature is None:
            if seen_signed:
                raise AuditUnverified(
                    f"{path}:{number}: checkpoint is not signed, after a signed one",
                    finding="checkpoint_unsigned",
                )
            if not keyed:
                anchor = sealed
            continue
        seen_signed = True
        if keyed and keys.signer(sealed) is None:
            raise AuditUnverified(
                f"{path}:{number}: checkpoint signature does not verify under a trusted key",
                finding="checkpoint_signature",
            )
        anchor = sealed
    if keyed and anchor is None and ours:
        anchor = ours[-1][1]  # unsigned checkpoints only: they predate the key
    if last_head is not None:
        covered = max((c.rows for _n, c in ours), default=-1)
        if covered < last_head.rows:
            raise AuditUnverified(
                f"{path} has no checkpoint of row {last_head.rows}, which the service sealed last",
                finding="external_checkpoint",
            )
        if last_head.signed and keyed and not seen_signed:
            raise AuditUnverified(
                f"{path} holds no signed checkpoint, though the service last signed one",
                finding="checkpoint_unsigned",
            )
    return _GENESIS if anchor is None else anchor


def _never_sealed(conn: sqlite3.Connection, path: Path) -> None:
    """With no checkpoint in the file or the state database, the record must be one that never
    had one (`store.unsealed_end`): else trusting the chain from its first row would extend, and
    sign, whatever was rewritten."""
    ended = unsealed_end(conn)
    if ended is not None:
        raise AuditUnverified(
            f"{path} holds a run that ended at row {ended}, but neither the checkpoint file"
            " nor the state database holds a checkpoint of the record: both were removed, or"
            " the files come from different places",
            finding="missing_checkpoints",
        )


def _since(
    conn: sqlite3.Connection, since: WrittenHead | None, log_id: str, length: int
) -> Checkpoint | None:
    """The head verified before as the anchor: same log, and its row still hashes to it."""
    if since is None:
        return None
    if since.log_id != log_id:
        raise AuditUnverified(
            f"the record is log {log_id}, but this service verified log {since.log_id}",
            finding="replaced_log",
        )
    if since.rows > length:
        raise AuditUnverified(
            f"the log has {length} rows, but this service verified {since.rows}: the tail was"
            " truncated or an older copy restored",
            finding="truncated",
        )
    if since.rows:
        row = conn.execute("SELECT hash FROM events WHERE seq = ?", [since.rows]).fetchone()
        if row is None or row[0] != since.head:
            raise AuditUnverified(
                f"row {since.rows} changed since this service verified it", finding="bad_hash"
            )
    return Checkpoint(log_id=log_id, rows=since.rows, head=since.head, time="")


def _signed(ours: list[tuple[int, Checkpoint]]) -> bool:
    return any(sealed.signature for _n, sealed in ours)


def _matches_row(conn: sqlite3.Connection, sealed: Checkpoint | WrittenHead, length: int) -> None:
    if sealed.rows > length:
        raise AuditUnverified(
            f"a checkpoint covers {sealed.rows} rows but the log has {length}: the tail was"
            " truncated or an older copy restored",
            finding="truncated",
        )
    if sealed.rows == 0:
        return
    row = conn.execute("SELECT hash FROM events WHERE seq = ?", [sealed.rows]).fetchone()
    if row is None or row[0] != sealed.head:
        raise AuditUnverified(
            f"row {sealed.rows} does not hash to {sealed.head[:16]}…, as its checkpoint says",
            finding="external_checkpoint",
        )
    if isinstance(sealed, Checkpoint):
        stored = conn.execute(
            "SELECT data FROM events WHERE seq = ? AND event = 'checkpoint'", [sealed.rows + 1]
        ).fetchone()
        if stored is None or _payload(stored[0]) != sealed.payload():
            raise AuditUnverified(
                f"the checkpoint of row {sealed.rows} in the file differs from row"
                f" {sealed.rows + 1} of the log",
                finding="checkpoint_mismatch",
            )


def _payload(data: str) -> dict[str, object] | None:
    try:
        return Checkpoint.from_payload(json.loads(data)).payload()
    except (ValueError, KeyError, TypeError):
        return None


def _chain_from(
    conn: sqlite3.Connection, anchor: Checkpoint, *, seen_signed: bool
) -> tuple[int, str]:
    """Rehash every row after the anchor; each links to the one before and seals what it says.

    Returns the number of rows rehashed and the head hash they end at.
    """
    expected, previous, checked = anchor.rows + 1, anchor.head, 0
    for seq, _time, event, data, prev_hash, stored, computed in walk_chain(conn, anchor.rows):
        if seq != expected or prev_hash != previous:
            raise AuditUnverified(
                f"row {seq} does not follow row {expected - 1}", finding="broken_link"
            )
        if computed != stored:
            raise AuditUnverified(
                f"row {seq}: stored hash does not match its contents", finding="bad_hash"
            )
        if event == "checkpoint":
            sealed = _payload(data)
            if sealed is None or sealed["rows"] != seq - 1 or sealed["head"] != previous:
                raise AuditUnverified(
                    f"row {seq}: checkpoint does not seal the rows before it",
                    finding="checkpoint_mismatch",
                )
            if sealed["signature"] is None and seen_signed:
                raise AuditUnverified(
                    f"row {seq}: checkpoint is not signed, after a signed one",
                    finding="checkpoint_unsigned",
                )
            seen_signed = seen_signed or sealed["signature"] is not None
        expected, previous, checked = seq + 1, stored, checked + 1
    return checked, previous
