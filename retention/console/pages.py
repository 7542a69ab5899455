"""What each page shows, read without the lock: proposals, runs, items, changes, verdicts, record.

Plain functions of the settings and the clock; the state directory is opened read-only (the
console reads while a run holds the lock) and the record through its reader connection.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from retention.approvals.decisions import Decision
from retention.approvals.proposals import Proposal, pending
from retention.approvals.store import Tally, approvals_needed, decisions_signed
from retention.audit.checkpoint import CHECKPOINT_FILE, load_signing_key
from retention.audit.export import Filters, parse_when
from retention.audit.keys import load_keyring, trusted_key_paths
from retention.audit.report import render_report
from retention.audit.store import connect_reader
from retention.audit.summary import summarise
from retention.audit.verify import verify_log
from retention.engine.explain import Explanation
from retention.engine.inputs import explainer_for
from retention.engine.inventory import iter_sessions
from retention.engine.planfile import LoadedPlan, read_plan_file
from retention.engine.planitem import PlanItem
from retention.errors import InvalidInput
from retention.policy import load_policy_set
from retention.service.statedir import read_only
from retention.settings import Settings

# A proposal's file name as review mode writes it; anything else is never opened.
PROPOSAL_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{12}\.json$")


@dataclass(frozen=True)
class ProposalRow:
    """A pending proposal as the overview lists it."""

    name: str
    plan_id: str
    items: int
    age_hours: float
    expired: bool
    approvals: int
    needed: int
    principals: list[str]


def proposal_rows(settings: Settings, now: datetime) -> list[ProposalRow]:
    needed = max(1, approvals_needed(settings))
    rows = []
    for proposal in pending(settings):
        tally = proposal.tally(settings)
        rows.append(
            ProposalRow(
                name=proposal.path.name,
                plan_id=proposal.plan.plan_id,
                items=len(proposal.plan.items),
                age_hours=round(proposal.age_hours(now), 1),
                expired=proposal.expired(now, settings),
                approvals=len(tally.valid),
                needed=needed,
                principals=tally.principals,
            )
        )
    return rows


def find_proposal(settings: Settings, name: str) -> Proposal | None:
    """A pending proposal by its file name (only names review mode writes)."""
    if not PROPOSAL_NAME.match(name):
        return None
    return next((p for p in pending(settings) if p.path.name == name), None)


def last_runs(settings: Settings, limit: int = 10) -> list[dict[str, Any]]:
    """The last runs the record holds: when, what started them, their result, counts and the
    reasons of their refusals (read through the index on event kinds)."""
    path = settings.audit_db
    if not path.is_file():
        return []
    with contextlib.closing(connect_reader(path)) as conn:
        ended = conn.execute(
            "SELECT run, time, data FROM events WHERE event = 'run_finished' "
            "ORDER BY time DESC, seq DESC LIMIT ?",
            [limit],
        ).fetchall()
        runs = [str(run) for run, _time, _data in ended]
        marks = ", ".join("?" for _ in runs)
        started = dict(
            conn.execute(
                f"SELECT run, data FROM events WHERE event = 'run_started' AND run IN ({marks})",  # noqa: S608
                runs,
            ).fetchall()
        )
        refusals = conn.execute(
            f"SELECT run, data FROM events WHERE event = 'refused' AND run IN ({marks})",  # noqa: S608
            runs,
        ).fetchall()
    refused: dict[str, list[str]] = {}
    for run, data in refusals:
        refused.setdefault(str(run), []).append(str(json.loads(data).get("reason", "")))
    return [
        {
            "run": run,
            "finished": finished,
            "trigger": json.loads(started.get(run) or "{}").get("trigger", ""),
            "result": json.loads(data).get("result", ""),
            "counts": json.loads(data).get("counts", {}),
            "refused": refused.get(str(run), []),
        }
        for run, finished, data in ended
    ]


@dataclass(frozen=True)
class ItemQuery:
    """The proposal page's search: organizer (email or key), group, subject, date (prefix)."""

    organizer: str = ""
    group: str = ""
    subject: str = ""
    date: str = ""

    def matches(self, item: PlanItem) -> bool:
        organizer = self.organizer.casefold()
        if organizer and organizer not in (
            (item.organizer_email or "").casefold(),
            str(item.organizer_key),
        ):
            return False
        if self.group and self.group.casefold() not in (item.group or "").casefold():
            return False
        if self.subject and self.subject.casefold() not in (item.subject or "").casefold():
            return False
        start = item.start_time.isoformat() if item.start_time else ""
        return not self.date or start.startswith(self.date)


@dataclass
class ProposalView:
    """Everything the proposal page shows."""

    proposal: Proposal
    tally: Tally
    needed: int
    items: list[PlanItem]
    decisions: list[tuple[Decision, list[str]]]
    added: list[PlanItem] = field(default_factory=list)
    dropped: list[PlanItem] = field(default_factory=list)
    previous: str | None = None

    @property
    def plan(self) -> LoadedPlan:
        return self.proposal.plan

    @property
    def organizers(self) -> list[tuple[str, str]]:
        """(key, email) of each organizer with items, for the postpone-all choice."""
        found = {str(i.organizer_key): i.organizer_email or "" for i in self.plan.items}
        return sorted(found.items(), key=lambda pair: (pair[1], pair[0]))

    @property
    def meetings(self) -> list[str]:
        return sorted({str(i.meeting_id) for i in self.plan.items})


def proposal_view(settings: Settings, proposal: Proposal, query: ItemQuery) -> ProposalView:
    tally = proposal.tally(settings)
    view = ProposalView(
        proposal=proposal,
        tally=tally,
        needed=max(1, approvals_needed(settings)),
        items=[item for item in proposal.plan.items if query.matches(item)],
        decisions=decisions_signed(proposal.path, proposal.plan.recorded_hash),
    )
    previous = _previous(proposal)
    if previous is not None:
        before = {item.key: item for item in previous.items}
        now = {item.key: item for item in proposal.plan.items}
        view.added = [item for key, item in now.items() if key not in before]
        view.dropped = [item for key, item in before.items() if key not in now]
        view.previous = Path(previous.path).name
    return view


def _previous(proposal: Proposal) -> LoadedPlan | None:
    """The proposal made before this one (pending or done with), if any."""
    folder = proposal.path.parent
    earlier = [
        path
        for path in [*folder.glob("*.json"), *folder.glob("*/*.json")]
        if PROPOSAL_NAME.match(path.name) and path.name < proposal.path.name
    ]
    if not earlier:
        return None
    path = max(earlier, key=lambda found: found.name)
    try:
        return read_plan_file(str(path), path.read_text("utf-8"))
    except (InvalidInput, OSError, UnicodeDecodeError):
        return None


def explain(
    settings: Settings, now: datetime, *, session: str = "", organizer: str = ""
) -> list[Explanation]:
    """`retention explain` for a session id or an organizer (email or key), from the inventory."""
    policy_set = load_policy_set([settings.policy_dir])
    with read_only(settings, "explain from") as db:
        explainer, _refused = explainer_for(db, policy_set, settings, now, now)
        return [explainer(record) for record in _chosen(db, session, organizer)]


def _chosen(db: Any, session: str, organizer: str) -> Iterator[Any]:
    wanted = organizer.strip().casefold()
    for record in iter_sessions(db):
        if (session and str(record.session_id) == session.strip()) or (
            wanted
            and wanted
            in (
                (record.organizer_email or "").casefold(),
                str(record.organizer_key),
            )
        ):
            yield record


def period(since: str, until: str) -> Filters:
    """The record page's period (dates or times, as `audit report` takes them)."""
    return Filters(
        since=parse_when(since, option="since") if since else None,
        until=parse_when(until, option="until", end=True) if until else None,
    )


def record_report(settings: Settings, chosen: Filters, generated: str) -> str:
    """The report of a period, as `audit report` writes it (the whole record verified)."""
    path = settings.audit_db
    if not path.is_file():
        raise InvalidInput(f"no audit record at {path} yet", hint="a run writes it")
    checkpoints = path.parent / CHECKPOINT_FILE
    own = []
    if settings.signing_key is not None:
        own.append(load_signing_key(settings.signing_key.get_secret_value()).public_key())
    verified = verify_log(
        path,
        checkpoint_file=checkpoints if checkpoints.is_file() else None,
        keys=load_keyring(trusted_key_paths(settings.trusted_keys), own),
    )
    with contextlib.closing(connect_reader(path)) as conn:
        conn.execute("BEGIN")
        summary = summarise(conn, chosen)
    return render_report(summary, verified, generated=generated)


def record_rows(settings: Settings) -> int:
    """How many rows the record holds now (a cached report is redone when it grows)."""
    path = settings.audit_db
    if not path.is_file():
        return 0
    with contextlib.closing(connect_reader(path)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
        except sqlite3.DatabaseError:
            return 0


def sessions_named(values: Sequence[str]) -> list[str]:
    """Digit strings only (session ids, organizer keys, meeting ids from a form)."""
    return [value for value in values if value.isdigit()]
