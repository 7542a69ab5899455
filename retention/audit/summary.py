"""The report's figures, read from the record with SQL for a period: totals, removals, runs."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retention.audit.export import Filters, Removal, removals
from retention.audit.loaded import PolicyFile, PolicySet, RunSummary, provenance
from retention.audit.store import connect_reader

# Actions whose removal takes the recording with it, so its bytes count as removed.
_RECORDING_ACTIONS = ("delete_recordings", "delete_session")
_FAILURES_LISTED = 500


@dataclass(frozen=True, slots=True)
class Group:
    """One bar of a chart: a key (month, policy or action), removals and recording bytes."""

    key: str
    count: int
    bytes: int


@dataclass
class HoldSummary:
    """A hold in force at the latest load, and what the record says it protected."""

    hold_id: str
    reason: str
    expires: str | None
    sessions: set[int] = field(default_factory=set)
    blocked: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Approver:
    """Who approved a plan: a principal with its key's fingerprint, or who said `--yes`."""

    principal: str
    fingerprint: str | None = None
    time: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Approval:
    """A `plan_approved` event: the plan (id and hash), its run, its approvers and time."""

    seq: int
    time: str
    run: str | None
    plan_id: str | None
    plan_hash: str
    as_of: str | None
    approvers: list[Approver]
    # What the approvers postponed: sessionId, action, until, reason, by (as recorded).
    exclusions: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A `refused` event: its reason code, the message, the policy refused on its own."""

    seq: int
    time: str
    run: str | None
    reason: str
    message: str
    policy: str | None


@dataclass
class Summary:
    """Every figure of the report for one period, each computed by one query over the record."""

    period: Filters
    outcomes: Counter[str]
    bytes_removed: int
    by_month: list[Group]
    by_policy: list[Group]
    by_action: list[Group]
    holds: list[HoldSummary]
    failures: list[tuple[int, str, str, int, int | None, str | None]]
    refusals: list[Refusal]
    # (seq, time, action, session, seq of the outcome that said deleted): removals seen again.
    reappeared: list[tuple[int, str, str, str, int | None]]
    approvals: list[Approval]
    removals: list[Removal]
    runs: list[RunSummary]
    policy_sets: list[PolicySet]
    policy_files: list[PolicyFile]

    @property
    def runs_needing_attention(self) -> list[RunSummary]:
        """Runs that failed, were halted or never recorded their end."""
        return [run for run in self.runs if run.needs_attention]

    @property
    def runs_waiting(self) -> list[RunSummary]:
        """Runs that left removals waiting on an owner notice that could not go out, or whose
        holds kept sessions their organizer had moved out of the hold's scope."""
        return [
            run
            for run in self.runs
            if run.counts.get("notice_unsent") or run.counts.get("hold_scope_left")
        ]

    @property
    def unenforced(self) -> list[Refusal]:
        """Refusals of a policy on its own (a cap, a name never seen): it went unenforced."""
        return [refusal for refusal in self.refusals if refusal.policy]


def _deleted_groups(conn: sqlite3.Connection, key_sql: str, period: Filters) -> list[Group]:
    where, params = period.where("o")
    rows = conn.execute(
        f"SELECT {key_sql} AS key, count(*), coalesce(sum(CASE WHEN o.action IN"  # noqa: S608
        f" {_RECORDING_ACTIONS!r} THEN json_extract(i.data, '$.recording_bytes') END), 0)"
        " FROM events AS o JOIN events AS i ON i.seq = o.intent_seq"
        f" WHERE o.event = 'outcome' AND o.outcome = 'deleted' AND {where}"
        " GROUP BY key ORDER BY key",
        params,
    )
    return [Group(str(key), count, int(size)) for key, count, size in rows]


def _holds(
    conn: sqlite3.Connection, loaded: list[dict[str, Any]], period: Filters
) -> list[HoldSummary]:
    holds = {
        hold["id"]: HoldSummary(hold["id"], hold["reason"], hold["expires"]) for hold in loaded
    }
    where, params = period.where()
    for (data_text,) in conn.execute(
        f"SELECT data FROM events WHERE event = 'hold_blocked' AND {where}",  # noqa: S608
        params,
    ):
        data = json.loads(data_text)
        summary = holds.setdefault(
            data["hold"], HoldSummary(data["hold"], "(no longer loaded)", None)
        )
        summary.sessions.update(data["sessions"])
        summary.blocked.update(data["actions"])
    return sorted(holds.values(), key=lambda hold: hold.hold_id)


def _approvers(data: dict[str, Any], moment: str) -> list[Approver]:
    listed = data.get("approvers")
    if isinstance(listed, list) and listed:
        return [
            Approver(
                principal=str(entry.get("principal", "?")),
                fingerprint=entry.get("fingerprint"),
                time=entry.get("time"),
                comment=entry.get("comment"),
            )
            for entry in listed
            if isinstance(entry, dict)
        ]
    return [Approver(principal=str(data.get("approved_by") or "?"), time=moment)]


def _events(
    conn: sqlite3.Connection, event: str, columns: str, period: Filters
) -> Iterator[tuple[Any, ...]]:
    """The period's events of one kind in order: the `columns` named, then the data parsed."""
    where, params = period.where()
    rows = conn.execute(
        f"SELECT {columns}, data FROM events"  # noqa: S608
        f" WHERE event = ? AND {where} ORDER BY seq",
        [event, *params],
    )
    for *values, data_text in rows:
        yield (*values, json.loads(data_text))


def _approvals(conn: sqlite3.Connection, period: Filters) -> list[Approval]:
    return [
        Approval(
            seq=seq,
            time=moment,
            run=run,
            plan_id=plan,
            plan_hash=str(data.get("plan_hash") or ""),
            as_of=data.get("as_of"),
            approvers=_approvers(data, moment),
            exclusions=[
                {key: str(value) for key, value in entry.items()}
                for entry in data.get("exclusions") or ()
                if isinstance(entry, dict)
            ],
        )
        for seq, moment, run, plan, data in _events(
            conn, "plan_approved", "seq, time, run, plan", period
        )
    ]


def _refusals(conn: sqlite3.Connection, period: Filters) -> list[Refusal]:
    refusals = []
    for seq, moment, run, data in _events(conn, "refused", "seq, time, run", period):
        details = data.get("details") or {}
        message = details.get("message") or details.get("check") or ""
        refusals.append(
            Refusal(
                seq=seq,
                time=moment,
                run=run,
                reason=str(data.get("reason") or "refused"),
                message=str(message),
                policy=details.get("policy"),
            )
        )
    return refusals


def summarise(conn: sqlite3.Connection, period: Filters | None = None) -> Summary:
    """Read every figure of the report for `period` (default: all) from a read-only connection."""
    period = period or Filters()
    where, params = period.where()
    outcomes = Counter(
        dict(
            conn.execute(
                "SELECT outcome, count(*) FROM events"  # noqa: S608
                f" WHERE event = 'outcome' AND {where} GROUP BY outcome",
                params,
            ).fetchall()
        )
    )
    by_action = _deleted_groups(conn, "o.action", period)
    outcome_where, outcome_params = period.where("o")
    failures = conn.execute(
        "SELECT o.seq, o.time, o.action, o.session_id, json_extract(o.data, '$.status'),"  # noqa: S608
        " json_extract(o.data, '$.reason') FROM events AS o"
        f" WHERE o.event = 'outcome' AND o.outcome = 'failed' AND {outcome_where}"
        " ORDER BY o.seq DESC LIMIT ?",
        [*outcome_params, _FAILURES_LISTED],
    ).fetchall()
    reappeared = [
        (int(seq), str(moment), str(action), str(session), deleted)
        for seq, moment, action, session, deleted in conn.execute(
            "SELECT seq, time, action, session_id, json_extract(data, '$.deleted_seq')"  # noqa: S608
            f" FROM events WHERE event = 'reappeared' AND {where} ORDER BY seq DESC LIMIT ?",
            [*params, _FAILURES_LISTED],
        )
    ]
    found = provenance(conn, period)
    return Summary(
        period=period,
        outcomes=outcomes,
        bytes_removed=sum(group.bytes for group in by_action),
        by_month=_deleted_groups(conn, "substr(o.time, 1, 7)", period),
        by_policy=_deleted_groups(conn, "o.policy", period),
        by_action=by_action,
        holds=_holds(conn, found.holds, period),
        failures=failures,
        refusals=_refusals(conn, period),
        reappeared=reappeared,
        approvals=_approvals(conn, period),
        removals=removals(conn, period),
        runs=found.runs,
        policy_sets=found.sets,
        policy_files=found.files,
    )


def reappearances_of(path: Path, session_id: int) -> list[dict[str, Any]]:
    """The `reappeared` events of one session, oldest first (`explain`); [] without a record."""
    if not path.is_file():
        return []
    conn = connect_reader(path)
    try:
        rows = conn.execute(
            "SELECT seq, time, action, json_extract(data, '$.deleted_seq') FROM events"
            " WHERE event = 'reappeared' AND CAST(session_id AS TEXT) = ? ORDER BY seq",
            [str(session_id)],
        ).fetchall()
    finally:
        conn.close()
    return [
        {"seq": seq, "time": moment, "action": action, "deleted_seq": deleted}
        for seq, moment, action, deleted in rows
    ]
