"""`retention audit …`: verify, export, show, report, checkpoint and keygen for the audit record."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import click
from sqlite_utils import Database

from retention.audit.checkpoint import generate_key_pair, key_id, load_signing_key
from retention.audit.export import (
    Filters,
    iter_export,
    parse_when,
    removals,
    write_csv,
    write_jsonl,
)
from retention.audit.head import HeadMark, WrittenHead, last_head, written_mark
from retention.audit.keys import KeyRing, load_keyring, trusted_key_paths
from retention.audit.report import render_report
from retention.audit.store import AuditInputError, connect_reader, read_meta
from retention.audit.summary import summarise
from retention.audit.timelyreport import read_timeliness
from retention.audit.verify import VerifyReport, verify_log
from retention.cli.app import cli
from retention.cli.listing import organizer_key
from retention.cli.tables import FitTable, console_for, output_width, wrap
from retention.errors import InvalidInput, RetentionError
from retention.service.logging import configure_logging
from retention.service.progress import progress_logged
from retention.service.record import CHECKPOINT_FILE
from retention.service.timeliness import schedule_gap_seconds
from retention.settings import load_settings
from retention.units import format_bytes

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The audit database (default: audit.db in RETENTION_STATE_DIR).",
)
_verify_options = [
    click.option(
        "--checkpoint",
        "checkpoint_file",
        type=click.Path(path_type=Path, dir_okay=False),
        help=f"External checkpoint file (default: {CHECKPOINT_FILE} beside the database).",
    ),
    click.option(
        "--public-key",
        "public_keys",
        multiple=True,
        type=click.Path(path_type=Path),
        help="PEM public key (or a folder of .pub files) a checkpoint may verify under; repeat"
        " for earlier keys (default: RETENTION_TRUSTED_KEYS and the signing key's own).",
    ),
]


def _with(options: list[Callable[[Any], Any]]) -> Callable[[Any], Any]:
    def apply(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


def _filter_options(function: Any) -> Any:
    for option in reversed(
        [
            click.option(
                "--since",
                help="Only events at or after this time: a date, an ISO time (UTC), `7d` (7 days"
                " ago), `yesterday` or `today`.",
            ),
            click.option(
                "--until",
                help="Only events before this time (same forms); a date includes the day.",
            ),
            click.option("--policy", help="Only events of this policy."),
            click.option(
                "--organizer",
                help="Only events of this organizer: a key, or an email the last inventory knows.",
            ),
        ]
    ):
        function = option(function)
    return function


def _filters(
    since: str | None, until: str | None, policy: str | None, organizer: str | None
) -> Filters:
    return Filters(
        since=parse_when(since, option="--since") if since else None,
        until=parse_when(until, option="--until", end=True) if until else None,
        policy=policy,
        organizer=None if organizer is None else _organizer(organizer),
    )


def _organizer(text: str) -> int:
    """A key as given; an email through the configured state's last inventory."""
    if text.strip().isdigit():
        return int(text)
    return organizer_key(load_settings().state_db, text)


def record_path(db_path: Path | None) -> Path:
    """The --db given, or audit.db in the configured state directory."""
    return db_path if db_path is not None else load_settings().audit_db


def _verify(
    db: Path,
    checkpoint_file: Path | None,
    public_keys: tuple[Path, ...],
    state_db: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify with the given inputs, or the defaults: the file beside the log, the settings keys.

    `state_db` (from `--state-dir`, else the configured one when `db` is its record) gives the
    heads the service wrote, which the record is compared with; `progress` hears the chain walk.
    """
    if checkpoint_file is None and (db.parent / CHECKPOINT_FILE).is_file():
        checkpoint_file = db.parent / CHECKPOINT_FILE
    sealed, written = _state_heads(db, state_db)
    return verify_log(
        db,
        checkpoint_file=checkpoint_file,
        keys=_keys(public_keys),
        last_head=sealed,
        written=written,
        progress=progress,
    )


def _state_heads(db: Path, state_db: Path | None) -> tuple[WrittenHead | None, HeadMark | None]:
    """The head the service last sealed and its written head, read-only from the state."""
    if state_db is None:
        settings = load_settings()
        if db != settings.audit_db:
            return None, None
        state_db = settings.state_db
    if not state_db.is_file():
        return None, None
    uri = f"{state_db.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as conn:
        try:
            state = Database(conn)
            return last_head(state), written_mark(state)
        except sqlite3.DatabaseError:
            return None, None


def _keys(public_keys: tuple[Path, ...]) -> KeyRing:
    if public_keys:
        return load_keyring(public_keys)
    settings = load_settings()
    own = []
    if settings.signing_key is not None:
        own.append(load_signing_key(settings.signing_key.get_secret_value()).public_key())
    return load_keyring(trusted_key_paths(settings.trusted_keys), own)


@cli.group()
def audit() -> None:
    """The audit record: verify it, export it, show recent removals, write a report."""


@audit.command()
@db_option
@_with(_verify_options)
@click.option(
    "--state-dir",
    "state_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="A state directory: its audit.db (unless --db) is compared with the heads its"
    " state.db says the service wrote (default: RETENTION_STATE_DIR's, for its own record).",
)
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
def verify(
    db_path: Path | None,
    checkpoint_file: Path | None,
    public_keys: tuple[Path, ...],
    state_dir: Path | None,
    output: str,
) -> None:
    """Recompute the hash chain and check schema, checkpoints and outcomes.

    Exit 0 only when everything is clean, 1 when anything is wrong, 2 when an input file
    cannot be read.
    """
    with progress_logged() as logged:
        progress = None
        if logged is not None:
            configure_logging()  # the lines go to stderr: stdout holds the report
            logged.update("verify", "rows", 0)  # lines during the integrity check too
            progress = logged.reporter("verify", "rows")
        if state_dir is not None:
            db = db_path if db_path is not None else state_dir / "audit.db"
            report = _verify(db, checkpoint_file, public_keys, state_dir / "state.db", progress)
        else:
            report = _verify(record_path(db_path), checkpoint_file, public_keys, progress=progress)
    if output == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        width = output_width(sys.stdout)
        for line in render_verify_text(report).splitlines():
            click.echo("\n".join(wrap(line, width, indent="    ")))
    sys.exit(0 if report.clean else 1)


def render_verify_text(report: VerifyReport) -> str:
    """The report as CloudTrail-style lines: what was checked, what was found, the verdict."""
    checkpoints = report.checkpoints
    lines = [
        f"Audit record {report.path} (log {report.log_id or 'unknown'})",
        f"Rows checked: {report.first_seq or 0} to {report.last_seq or 0}"
        f" ({report.first_time or '-'} to {report.last_time or '-'})",
        f"Rows: {report.rows:,} found, {report.valid_rows:,} valid,"
        f" {report.rows - report.valid_rows:,} invalid",
        f"Head hash: {report.head_hash}",
        f"Integrity check: {report.integrity}",
        f"Schema and triggers: {'; '.join(report.schema) or 'intact'}",
        f"Checkpoints in the log: {checkpoints.get('total', 0)}"
        + (
            f" ({checkpoints.get('valid', 0)} signatures valid, {checkpoints.get('invalid', 0)}"
            f" invalid, {checkpoints.get('unsigned', 0)} unsigned)"
            if report.signatures_checked
            else " (signatures not checked: no public key)"
        ),
        f"Keys given: {', '.join(report.key_ids) or 'none'};"
        f" checkpoints verified under: {', '.join(report.keys_used) or 'none'}",
        f"External checkpoints: {report.external_checkpoints}"
        + (
            f", latest covers {report.latest_external['rows']:,} rows at"
            f" {report.latest_external['time']}"
            if report.latest_external
            else ""
        ),
        f"Intents without outcome: {len(report.pending_intents)}",
        _written_line(report.written_head),
    ]
    bad = report.first_bad_row
    if bad is not None:
        lines.append(f"First bad row: {bad.seq}: {bad.message}")
        lines.append(f"  expected {bad.expected}")
        lines.append(f"  found    {bad.found}")
    lines.extend(f"FAIL [{finding.code}] {finding.message}" for finding in report.findings)
    rate = f"{report.rows / report.seconds:,.0f} rows/s" if report.seconds else "-"
    lines.append(f"Checked in {report.seconds:.2f} s ({rate})")
    lines.append(f"Result: {report.result}")
    return "\n".join(lines)


def _written_line(written: dict[str, Any] | None) -> str:
    if written is None:
        return "Written head: not compared (no state directory, or none kept yet)"
    verdict = "the record ends there" if written["matches"] else "MISMATCH"
    return (
        f"Written head: row {written['rows']:,} ({written['head'][:16]}…), before its last"
        f" commit row {written['previous_rows']:,}; the record has {written['record_rows']:,}"
        f" rows: {verdict}"
    )


@audit.command()
@db_option
@click.option("--format", "output", type=click.Choice(["csv", "jsonl"]), required=True)
@_filter_options
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Default: stdout.")
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    metavar="N",
    help="Only rows after row N (where a collector left off); needs --log-id.",
)
@click.option(
    "--log-id",
    metavar="ID",
    help="The log the rows must come from (`audit verify` names it); another log is exit 2.",
)
def export(
    *,
    db_path: Path | None,
    output: str,
    since: str | None,
    until: str | None,
    policy: str | None,
    organizer: str | None,
    out: Path | None,
    after_seq: int | None,
    log_id: str | None,
) -> None:
    """Every event as one row, streamed (columns are documented and stable)."""
    filters = replace(_filters(since, until, policy, organizer), after_seq=after_seq)
    conn = _open_record(record_path(db_path))
    writer = write_csv if output == "csv" else write_jsonl
    try:
        conn.execute("BEGIN")
        _check_resume(conn, after_seq, log_id)
        if out is None:
            count = writer(iter_export(conn, filters), sys.stdout)
        else:
            with _open_out(out) as handle:
                count = writer(iter_export(conn, filters), handle)
            click.echo(f"wrote {count:,} events to {out}", err=True)
    finally:
        conn.close()


def _check_resume(conn: sqlite3.Connection, after_seq: int | None, log_id: str | None) -> None:
    """A collector resumes the log it took rows from, within the rows it holds, or not at all."""
    current = read_meta(conn).get("log_id")
    if log_id is not None and log_id != current:
        raise InvalidInput(
            f"--log-id {log_id}: this record is log {current}, not log {log_id}",
            hint=f"a new log was started (`retention audit init --new-log`); take the rest of log"
            f" {log_id} from audit.{log_id}.db, then this one from its start:"
            f" --after-seq 0 --log-id {current}",
        )
    if after_seq is None:
        return
    if log_id is None:
        raise InvalidInput(
            "--after-seq needs --log-id: the log the rows were taken from",
            hint=f"this record is log {current}; pass --log-id {current} if the rows came from it",
        )
    (last,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    if after_seq > last:
        raise InvalidInput(
            f"--after-seq {after_seq}: log {current} ends at row {last}, before the rows taken",
            hint="the record was truncated or replaced: `retention audit verify` tells which",
        )


def _open_record(path: Path) -> sqlite3.Connection:
    """Open the log for reading; refuses a database without the events table (a log whose
    creation failed, e.g. on a full disk, or another file) instead of failing mid-query."""
    conn = connect_reader(path)
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone()
    if found is None:
        conn.close()
        raise AuditInputError(
            f"{path} holds no audit record (it has no events table)",
            hint="it was never written to, or is not an audit database; "
            "`retention audit verify` tells which",
        )
    return conn


def _open_out(path: Path) -> TextIO:
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise AuditInputError(f"cannot write {path}: {exc.strerror}") from None


@audit.command()
@db_option
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
def show(
    *,
    db_path: Path | None,
    since: str | None,
    until: str | None,
    policy: str | None,
    organizer: str | None,
    limit: int,
) -> None:
    """The most recent removals (outcomes of intents), newest first."""
    conn = _open_record(record_path(db_path))
    try:
        found = removals(
            conn, _filters(since, until, policy, organizer), newest_first=True, limit=limit
        )
    finally:
        conn.close()
    table = FitTable(f"Recent removals ({len(found)})")
    table.column("row", "number")
    table.column("time", "words")
    table.column("outcome", "words")
    table.column("action", "words")
    table.column("policy", "words")
    table.column("organizer", "number")
    table.column("session", "number")
    table.column("size", "number")
    for item in found:
        # The status of a removal made is always a success: only the others say why.
        parts = () if item.outcome == "deleted" else (item.status, item.reason)
        detail = " ".join(str(part) for part in parts if part is not None)
        table.row(
            str(item.seq),
            item.time[:19].replace("T", " "),
            f"{item.outcome} {detail}".strip(),
            item.action.removeprefix("delete_"),
            item.policy,
            str(item.organizer_key),
            str(item.session_id),
            format_bytes(item.recording_bytes) if item.recording_bytes is not None else "",
        )
    table.print(console_for())


@audit.command()
@db_option
@_with(_verify_options)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--since", help="Report the events at or after this date/time (default: all).")
@click.option("--until", help="Report the events before this time; a date includes the day.")
def report(
    *,
    db_path: Path | None,
    checkpoint_file: Path | None,
    public_keys: tuple[Path, ...],
    out: Path,
    since: str | None,
    until: str | None,
) -> None:
    """Write a self-contained HTML report for the compliance officer (prints well).

    The verification covers the whole record; the figures, removals, runs, approvals and
    refusals cover the period --since/--until gives.
    """
    period = _filters(since, until, None, None)
    db = record_path(db_path)
    verified = _verify(db, checkpoint_file, public_keys)
    conn = _open_record(db)
    try:
        conn.execute("BEGIN")
        summary = summarise(conn, period)
        timeliness = read_timeliness(conn, period, _schedule_gap())
    finally:
        conn.close()
    page = render_report(
        summary,
        verified,
        generated=datetime.now(UTC).isoformat(timespec="seconds"),
        timeliness=timeliness,
    )
    with _open_out(out) as handle:
        handle.write(page)
    removed, runs = len(summary.removals), len(summary.runs)
    click.echo(
        f"wrote {out}: {verified.rows:,} rows, verification {verified.result};"
        f" {removed:,} removal{'' if removed == 1 else 's'},"
        f" {runs:,} run{'' if runs == 1 else 's'} in the period"
    )


def _schedule_gap() -> float | None:
    """The gap of the overdue chart from the schedules in force, when settings and the folder
    can be read here (an auditor with the record alone gets it from the runs' cadence)."""
    try:
        return schedule_gap_seconds(load_settings())
    except RetentionError:
        return None


@audit.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True)
def keygen(out: Path) -> None:
    """Write a new Ed25519 key pair: OUT (private, 0600) and OUT.pub (public)."""
    public_path, public = generate_key_pair(out)
    click.echo(f"private key: {out} (mode 0600; give it to the service as the signing_key)")
    click.echo(f"public key:  {public_path} (key id {key_id(public)}; give it to auditors)")
