"""The runs and the policy files they loaded, read back: full loads and references alike.

A `policy_loaded` event holds the files in force (name, sha256, text), or, when the set is
unchanged since the previous load, a reference to the full event it repeats:
`{"policy_set_hash": H, "same_as": SEQ}` (audit/policyref.py). Either way a load resolves to
its files here, and every text is found by its sha256 in whichever load carried it, so both
forms render; a reference naming no earlier full load is shown unresolved (and `audit verify`
reports it).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retention.audit.export import Filters

_RUN_EVENTS = ("run_started", "run_finished")
# How many run ids a policy file lists by name; the runs table has every one of them.
RUNS_NAMED = 12


@dataclass(frozen=True, slots=True)
class Load:
    """One `policy_loaded`, resolved: its files (name, sha256) and holds, wherever written."""

    seq: int
    time: str
    run: str | None
    files: tuple[tuple[str, str], ...]
    holds: list[dict[str, Any]]
    same_as: str | None = None
    unresolved: bool = False


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One run: when and why it started, how it ended, and the policy set it loaded."""

    run: str
    started: str | None
    trigger: str | None
    finished: str | None
    result: str | None
    counts: dict[str, int]
    policy_set: str | None
    reference: bool = False

    @property
    def needs_attention(self) -> bool:
        """A run that failed, was halted, or never recorded its end."""
        return self.result in {"failed", "halted"} or self.finished is None


@dataclass
class PolicyFile:
    """A distinct policy or hold file (by sha256): its text and the runs that loaded it."""

    sha256: str
    names: list[str]
    text: str | None
    runs: list[str] = field(default_factory=list)
    sets: list[str] = field(default_factory=list)
    first: str = ""
    last: str = ""

    @property
    def runs_named(self) -> list[str]:
        """The runs listed by id: all of them when few, else the first and last ones."""
        if len(self.runs) <= RUNS_NAMED:
            return self.runs
        half = RUNS_NAMED // 2
        return [*self.runs[:half], "…", *self.runs[-half:]]


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A distinct set of files in force together, labelled in order of first load."""

    label: str
    files: tuple[tuple[str, str], ...]
    runs: int
    first: str
    last: str


@dataclass
class Provenance:
    """The runs of a period, the policy sets and files they loaded, the holds last loaded."""

    runs: list[RunSummary]
    sets: list[PolicySet]
    files: list[PolicyFile]
    holds: list[dict[str, Any]]


def _reference(data: Mapping[str, Any]) -> str | None:
    value = data.get("same_as")
    return None if value is None else str(value)


def read_loads(conn: sqlite3.Connection) -> tuple[list[Load], dict[str, str]]:
    """Every `policy_loaded` of the record in order, resolved; and every text by sha256."""
    loads: list[Load] = []
    texts: dict[str, str] = {}
    full_loads: dict[int, Load] = {}
    for seq, moment, run, data_text in conn.execute(
        "SELECT seq, time, run, data FROM events WHERE event = 'policy_loaded' ORDER BY seq"
    ):
        data = json.loads(data_text)
        same_as = _reference(data)
        target = data.get("same_as")
        base = full_loads.get(target) if isinstance(target, int) else None
        if "files" in data:
            files = tuple((f["name"], f["sha256"]) for f in data["files"])
            texts.update({f["sha256"]: f["text"] for f in data["files"] if "text" in f})
        else:
            files = base.files if base is not None else ()
        holds = data.get("holds", base.holds if base is not None else [])
        load = Load(
            seq=seq,
            time=moment,
            run=run,
            files=files,
            holds=holds,
            same_as=same_as,
            unresolved=same_as is not None and base is None and "files" not in data,
        )
        loads.append(load)
        if "files" in data:
            full_loads[seq] = load
    return loads, texts


def _in(period: Filters, moment: str | None) -> bool:
    if moment is None:
        return False
    return (period.since is None or moment >= period.since) and (
        period.until is None or moment < period.until
    )


def _run_events(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for run, event, moment, data_text in conn.execute(
        "SELECT run, event, time, data FROM events WHERE event IN (?, ?) ORDER BY seq",
        _RUN_EVENTS,
    ):
        entry = runs.setdefault(run, {"counts": {}})
        data = json.loads(data_text)
        if event == "run_started":
            entry.update(started=moment, trigger=data["trigger"])
        else:
            entry.update(finished=moment, result=data["result"], counts=data["counts"])
    return runs


def provenance(conn: sqlite3.Connection, period: Filters) -> Provenance:
    """The runs that started in the period, with the policy sets and files they loaded."""
    loads, texts = read_loads(conn)
    events = _run_events(conn)
    labels: dict[tuple[str, ...], str] = {}
    set_loads: dict[str, list[Load]] = {}
    files: dict[str, PolicyFile] = {}
    run_load: dict[str, Load] = {}
    for load in loads:
        started = events.get(load.run or "", {}).get("started", load.time)
        if not _in(period, started):
            continue
        if load.run is not None:
            run_load[load.run] = load
        if load.unresolved:
            continue  # names no earlier load: no set to show (`audit verify` reports it)
        key = tuple(sorted(sha for _name, sha in load.files))
        label = labels.setdefault(key, f"set {len(labels) + 1}")
        set_loads.setdefault(label, []).append(load)
        for name, sha in load.files:
            entry = files.setdefault(sha, PolicyFile(sha, [], texts.get(sha), first=load.time))
            if name not in entry.names:
                entry.names.append(name)
            if label not in entry.sets:
                entry.sets.append(label)
            if load.run is not None and load.run not in entry.runs:
                entry.runs.append(load.run)
            entry.last = load.time
    runs = [
        RunSummary(
            run=run,
            started=entry.get("started"),
            trigger=entry.get("trigger"),
            finished=entry.get("finished"),
            result=entry.get("result"),
            counts=entry["counts"],
            policy_set=labels.get(tuple(sorted(s for _n, s in run_load[run].files)))
            if run in run_load
            else None,
            reference=run in run_load and run_load[run].same_as is not None,
        )
        for run, entry in events.items()
        if _in(period, entry.get("started"))
    ]
    sets = [
        PolicySet(label, group[0].files, len(group), group[0].time, group[-1].time)
        for label, group in set_loads.items()
    ]
    in_force = [load for load in loads if period.until is None or load.time < period.until]
    return Provenance(
        runs=runs,
        sets=sets,
        files=sorted(files.values(), key=lambda f: (f.first, f.names[0])),
        holds=in_force[-1].holds if in_force else [],
    )
