"""`retention audit checkpoint` and `audit init --new-log`: the commands that write the record."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlite_utils import Database

from retention.audit.checkpoint import load_signing_key
from retention.audit.head import last_head
from retention.audit.keys import load_keyring, trusted_key_paths
from retention.audit.log import AuditLog
from retention.audit.newlog import start_new_log
from retention.audit.preflight import verify_before_write
from retention.audit.witness import witness_argv
from retention.cli.audit import audit, db_option, record_path
from retention.service.record import CHECKPOINT_FILE
from retention.settings import load_settings


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
    )
    with AuditLog.open(
        db,
        subject_mode=settings.audit_subject,
        signing_key=signing,
        checkpoint_path=checkpoint_path,
        clock=lambda: datetime.now(UTC),
        witness=witness_argv(settings.checkpoint_command),
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
