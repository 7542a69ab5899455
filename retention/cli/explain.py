"""`retention explain`: why one session (or one organizer's) is kept or removed, from the inventory.

Reads the last inventory and the policy folder only: no API call. Exit 2 for an unknown session
or organizer, and when no inventory exists yet.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click
from sqlite_utils import Database

from retention.audit.summary import reappearances_of
from retention.cli.app import cli
from retention.engine.explain import (
    EXPLAINED_ACTIONS,
    VERDICTS,
    Explainer,
    Explanation,
)
from retention.engine.inputs import explainer_for
from retention.engine.inventory import from_text, iter_sessions, session_record
from retention.engine.planitem import iso
from retention.engine.records import SessionRecord
from retention.errors import InvalidInput
from retention.policy import load_policy_set
from retention.service.preview import audit_subject
from retention.service.statedir import last_scan_time, read_only
from retention.settings import load_settings
from retention.times import parse_user_time
from retention.units import format_age, format_bytes

WIDTH = 80


@cli.command("explain")
@click.argument("session_id", required=False)
@click.option("--organizer", help="Summarise this organizer's sessions (email or key).")
@click.option("--as-of", help="Decide as of this time (ISO 8601 or a date); default now.")
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def explain_command(
    session_id: str | None, organizer: str | None, as_of: str | None, output: str
) -> None:
    """Why a session is kept or removed: per action a verdict, every rule and hold and why.

    Decides on the last inventory (`retention inventory`) without calling the API.
    """
    if (session_id is None) == (organizer is None):
        raise InvalidInput(
            "give either a SESSION_ID or --organizer EMAIL|KEY",
            hint="e.g. `retention explain 7021455903` or `retention explain --organizer ana@x.com`",
        )
    settings = load_settings()
    now = datetime.now(UTC)
    moment = now if as_of is None else parse_user_time(as_of, option="--as-of")
    policy_set = load_policy_set([settings.policy_dir])
    with read_only(settings, "explain from") as db:
        age = _inventory_age(db, now)
        # The admission step over the whole inventory, as `plan --offline` runs it: which
        # policies are refused on their own (caps, names the account never had).
        explainer, refused = explainer_for(db, policy_set, settings, moment, now)
        if organizer is not None:
            summary = _summary(db, organizer, explainer)
            _show_summary(organizer, summary, age, output)
            return
        assert session_id is not None
        record = _session(db, session_id)
        removed = _removed_at(db, record.session_id)
        explanation = explainer(record)
    with audit_subject(settings) as recorded:
        subject = recorded(record.subject)
    seen_again = reappearances_of(settings.audit_db, record.session_id)
    if output == "json":
        document = {
            "sessionId": str(record.session_id),
            "inventory_age_s": age,
            **explanation.to_json(),
            "session": {
                **_facts(record, subject, settings.audit_subject),
                "removed_at": iso(removed),
            },
            "reappeared": seen_again,
            "refused_policies": [
                {"policy": name, "by": by} for name, by in sorted(refused.items())
            ],
        }
        click.echo(json.dumps(document, indent=2))
    else:
        lines = _text(explanation, subject, settings.audit_subject, age)
        if removed is not None:
            lines.insert(1, f"  removed    from the account at {_when(removed)}")
        for event in reversed(seen_again):
            lines.insert(
                1,
                f"  reappeared {event['action']}: removed (row {event['deleted_seq'] or '-'}),"
                f" seen again by a later scan (row {event['seq']}): decided again",
            )
        for name, by in sorted(refused.items()):
            note = f"note: policy {name} is refused on its own ({by}): plan blocks its removals"
            lines.extend(_wrap(note, "      "))
        click.echo("\n".join(lines))


def _inventory_age(db: Database, now: datetime) -> int:
    """Seconds since the last complete scan ended (the inventory `plan --offline` reads)."""
    finished = last_scan_time(db)
    assert finished is not None  # _inventory refused a database without one
    return max(0, int((now - finished).total_seconds()))


def _session(db: Database, text: str) -> SessionRecord:
    hint = "`retention explain --organizer EMAIL` lists an organizer's sessions by verdict"
    try:
        number = int(text)
    except ValueError:
        raise InvalidInput(f"session id {text!r} is not a number", hint=hint) from None
    record = session_record(db, number)
    if record is None:
        raise InvalidInput(
            f"session {text} is not in the inventory",
            hint=f"check the id, or run `retention inventory` to read new sessions; {hint}",
        )
    return record


def _removed_at(db: Database, session_id: int) -> datetime | None:
    """When a removal of the whole session went out, if one did (the inventory keeps it)."""
    row = next(db.query("SELECT removed_at FROM sessions WHERE session_id = ?", [str(session_id)]))
    return from_text(row["removed_at"])


def _organizer_sessions(db: Database, organizer: str) -> Iterator[SessionRecord]:
    wanted = organizer.strip().casefold()
    for record in iter_sessions(db):
        email = (record.organizer_email or "").casefold()
        if wanted in (str(record.organizer_key), email):
            yield record


def _summary(db: Database, organizer: str, explainer: Explainer) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {action: Counter() for action in EXPLAINED_ACTIONS}
    seen = 0
    for record in _organizer_sessions(db, organizer):
        seen += 1
        for verdict in explainer(record).actions:
            counts[verdict.action][verdict.verdict] += 1
    if not seen:
        raise InvalidInput(
            f"organizer {organizer} has no session in the inventory",
            hint="give the organizer's email or key as `retention inventory` stored it",
        )
    return counts


def _show_summary(organizer: str, counts: dict[str, Counter[str]], age: int, output: str) -> None:
    sessions = sum(counts["delete_session"].values())
    if output == "json":
        document = {
            "organizer": organizer,
            "inventory_age_s": age,
            "sessions": sessions,
            "actions": {
                action: {verdict: counts[action][verdict] for verdict in VERDICTS}
                for action in EXPLAINED_ACTIONS
            },
        }
        click.echo(json.dumps(document, indent=2))
        return
    click.echo(f"{organizer}: {sessions} sessions, inventory read {format_age(age)} ago")
    header = f"{'verdict':<10}" + "".join(f"{action:>20}" for action in EXPLAINED_ACTIONS)
    click.echo(header)
    for verdict in VERDICTS:
        row = [counts[action][verdict] for action in EXPLAINED_ACTIONS]
        if any(row):
            click.echo(f"{verdict:<10}" + "".join(f"{count:>20}" for count in row))


def _facts(record: SessionRecord, subject: str | None, mode: str) -> dict[str, Any]:
    return {
        "organizerKey": str(record.organizer_key),
        "organizerEmail": record.organizer_email,
        "groupKey": None if record.group_key is None else str(record.group_key),
        "groupName": record.group_name,
        "meetingId": str(record.meeting_id),
        "meetingType": record.meeting_type,
        "startTime": iso(record.start_time),
        "endTime": iso(record.end_time),
        "recordingId": record.recording_id,
        "recording_bytes": record.recording_bytes,
        "attendees": record.attendee_count,
        "subject": subject,
        "subject_mode": mode,
    }


def _text(explanation: Explanation, subject: str | None, mode: str, age: int) -> list[str]:
    record = explanation.session
    lines = [
        f"session {record.session_id} as of {_when(explanation.as_of)}"
        f" (inventory read {format_age(age)} ago)",
        *_fact_lines(record, subject, mode),
        "",
        "actions:",
    ]
    for verdict in explanation.actions:
        head = f"  {verdict.action:<18} {verdict.verdict:<9} {verdict.policy or '-'}"
        if verdict.by:
            head += f"  by {verdict.by}"
        reason = verdict.reason
        if verdict.due:
            reason += f"; becomes due {_when(verdict.due)}"
        lines.extend(_wrap(head, "      "))
        lines.extend(_wrap(f"      {reason}", "      "))
    lines.append("")
    lines.append("rules:")
    for rule in explanation.matched:
        mark = "+" if rule.matches else "-"
        lines.extend(_wrap(f"  {mark} {rule.name} ({rule.kind}): {rule.reason}", "      "))
    lines.append("holds:" if explanation.holds else "holds: none")
    for hold in explanation.holds:
        mark = "+" if hold.matches else "-"
        lines.extend(_wrap(f"  {mark} {hold.name}: {hold.reason}", "      "))
    return lines


def _fact_lines(record: SessionRecord, subject: str | None, mode: str) -> list[str]:
    group = record.group_name or "(none)"
    if record.group_key is not None:
        group += f" (key {record.group_key})"
    if record.has_recording:
        size = record.recording_bytes
        recording = f"yes, {format_bytes(size)}" if size is not None else "yes, size unknown"
    else:
        recording = "none"
    attendees = "unknown" if record.attendee_count is None else str(record.attendee_count)
    if mode == "omit":
        shown = "(omitted: RETENTION_AUDIT_SUBJECT=omit)"
    elif subject is None:
        shown = "(unknown)" if mode == "keep" or record.subject is None else "(hashed; no record)"
    else:
        shown = subject if mode == "keep" else f"(hashed) {subject[:16]}…"
    facts = [
        (
            "organizer",
            f"{record.organizer_email or '(email unknown)'} (key {record.organizer_key})",
        ),
        ("group", group),
        ("meeting", f"{record.meeting_id}, {record.meeting_type or 'type unknown'}"),
        ("start", _when(record.start_time)),
        ("end", _when(record.end_time)),
        ("recording", recording),
        ("attendees", attendees),
        ("subject", shown),
    ]
    lines: list[str] = []
    for label, value in facts:
        lines.extend(_wrap(f"  {label:<10} {value}", " " * 13))
    return lines


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent, break_on_hyphens=False) or [""]


def _when(moment: datetime | None) -> str:
    return "unknown" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"
