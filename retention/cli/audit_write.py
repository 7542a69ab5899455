"""`retention audit checkpoint`, `audit init --new-log` and `audit adopt`: the commands that
write the record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlite_utils import Database

from retention.audit.checkpoint import load_signing_key
from retention.audit.head import HeadMark, last_head, written_mark
from retention.audit.keys import load_keyring, trusted_key_paths
from retention.audit.log import AuditLog
from retention.audit.newlog import start_new_log
from retention.audit.preflight import AuditUnverified, verify_before_write
from retention.audit.witness import witness_argv
from retention.cli.audit import audit, db_option, record_path
from retention.errors import InvalidInput
from retention.service.lock import acquire
from retention.service.record import CHECKPOINT_FILE
from retention.settings import Settings, load_settings

# What `adopt` accepts: the record ends elsewhere than the service wrote, and nothing else.
_ADOPTABLE = frozenset({"foreign_rows", "lost_rows"})


@audit.command()
@db_option
def checkpoint(db_path: Path | None) -> None:
    """Seal the record now: a signed row, a line in the checkpoint file and a log line.

    The record is verified first, as before every write; a record that does not verify is
    not sealed (exit 1).
    """
    settings = load_settings()
    db = record_path(db_path)
    key = settings.signing_key
    signing = load_signing_key(key.get_secret_value()) if key else None
    checkpoint_path = db.parent / CHECKPOINT_FILE
    state = _state_db(settings.state_db) if db_path is None else None
    verify_before_write(
        db,
        checkpoint_path,
        trusted_keys=_trusted(settings.trusted_keys),
        signing_key=signing,
        last_head=last_head(state) if state is not None else None,
        written=written_mark(state) if state is not None else None,
    )
    with AuditLog.open(
        db,
        subject_mode=settings.audit_subject,
        signing_key=signing,
        checkpoint_path=checkpoint_path,
        clock=lambda: datetime.now(UTC),
        witness=witness_argv(settings.checkpoint_command),
        state_db=settings.state_db if state is not None else None,
    ) as log:
        sealed = log.checkpoint(state=state)
    signed = f"signed by key {sealed.key_id}" if sealed.signature else "unsigned (no key set)"
    click.echo(f"checkpoint: {sealed.rows:,} rows, head {sealed.head}, {signed}")
    click.echo(f"appended to {log.checkpoint_path}")


def _state_db(path: Path) -> Database:
    path.parent.mkdir(parents=True, exist_ok=True)
    return Database(path)


def _trusted(setting: str | None) -> list[Ed25519PublicKey]:
    return list(load_keyring(trusted_key_paths(setting)).keys.values())


@audit.command()
@db_option
@click.option("--new-log", is_flag=True, required=True, help="Start a new log, on purpose.")
@click.option("--reason", required=True, help="Why: kept in the new log's first row.")
def init(db_path: Path | None, new_log: bool, reason: str) -> None:
    """Start a new audit log whose first row names the log it follows, its last head and why.

    The old database (if any) and checkpoint file are renamed with the old log id, never
    deleted. This is the only way the service starts a new record once one existed.
    """
    settings = load_settings()
    db = record_path(db_path)
    key = settings.signing_key
    state = _state_db(settings.state_db) if db_path is None else None
    started = start_new_log(
        db,
        db.parent / CHECKPOINT_FILE,
        state,
        reason=reason,
        subject_mode=settings.audit_subject,
        signing_key=load_signing_key(key.get_secret_value()) if key else None,
        clock=lambda: datetime.now(UTC),
    )
    previous = started.previous_log_id or "none"
    head = started.previous_head
    click.echo(f"new log {started.log_id} in {db}, following log {previous}")
    if head is not None:
        click.echo(f"last known head of log {previous}: row {head.rows:,}, {head.hash}")
    for source, target in started.moved:
        click.echo(f"moved {source} to {target}")


@audit.command()
@click.option("--reason", required=True, help="Why the record is accepted as it is: kept in it.")
def adopt(reason: str) -> None:
    """Accept the record as it is, when it ends elsewhere than the service wrote it.

    Rows the service did not write, or rows it wrote that are gone (lost WAL frames, an older
    copy restored): once an operator has checked them, an `adopted` row names the head the
    service wrote, the head the record has and the reason; it is sealed, and runs go on. A
    record with any other finding is not adopted (exit 1).
    """
    if not reason.strip():
        raise InvalidInput("--reason must say why the record is accepted as it is")
    settings = load_settings()
    with acquire(settings.state_dir, command="retention audit adopt"):
        state = _state_db(settings.state_db)
        mark = written_mark(state)
        if mark is None:
            raise InvalidInput(
                f"{settings.state_db} keeps no written head: there is nothing to adopt",
                hint="`retention audit verify --state-dir DIR` shows what the record holds",
            )
        _check_adoptable(settings, state, mark)
        key = settings.signing_key
        with AuditLog.open(
            settings.audit_db,
            subject_mode=settings.audit_subject,
            signing_key=load_signing_key(key.get_secret_value()) if key else None,
            checkpoint_path=settings.state_dir / CHECKPOINT_FILE,
            clock=lambda: datetime.now(UTC),
            witness=witness_argv(settings.checkpoint_command),
            state_db=settings.state_db,
        ) as log:
            seq = log.adopted(mark=mark, reason=reason)
            sealed = log.checkpoint(state=state)
    click.echo(
        f"adopted the record at row {seq - 1:,} (the service had written up to row"
        f" {mark.intended.rows:,}); the adoption is row {seq:,}, sealed at row {sealed.rows + 1:,}"
    )


def _check_adoptable(settings: Settings, state: Database, mark: HeadMark) -> None:
    """The record differs from the written head, and verifies in every other way."""
    key = settings.signing_key
    signing = load_signing_key(key.get_secret_value()) if key else None

    def check(written: HeadMark | None) -> None:
        verify_before_write(
            settings.audit_db,
            settings.state_dir / CHECKPOINT_FILE,
            trusted_keys=_trusted(settings.trusted_keys),
            signing_key=signing,
            last_head=last_head(state),
            full=True,
            written=written,
        )

    try:
        check(mark)
    except AuditUnverified as exc:
        if exc.finding not in _ADOPTABLE:
            raise
        click.echo(exc.message)
    else:
        raise InvalidInput(
            "the record ends where the service last wrote it: there is nothing to adopt"
        )
    check(None)
