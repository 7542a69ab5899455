"""A run whose policy set is unchanged records a reference to the last full `policy_loaded`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

from support import deploy

from retention.audit import AuditLog
from retention.audit.policyref import policy_set_hash
from retention.sandbox.policies import policy_set, rule

Opener = Callable[..., AuditLog]
Cli = Callable[..., Any]
# Nothing in the sandbox's 150 days is this old: every run is an empty one.
NOTHING_DUE = policy_set(rule("recordings", 3650))
FILES = [("policies.yaml", "a" * 64, "policies: []\n")]


def _loaded(log: AuditLog, run_id: str, text: str = "policies: []\n") -> int:
    return log.policy_loaded(
        run_id=run_id, files=[("policies.yaml", "a" * 64, text)], policies=[], holds=[]
    )


def _data(db_path: Path, seq: int) -> dict[str, Any]:
    with closing(sqlite3.connect(db_path)) as conn:
        (text,) = conn.execute("SELECT data FROM events WHERE seq = ?", [seq]).fetchone()
    data: dict[str, Any] = json.loads(text)
    return data


def test_an_unchanged_set_is_a_reference_to_the_first_full_event_and_a_change_is_in_full(
    open_log: Opener, db_path: Path
) -> None:
    log = open_log()
    first = _loaded(log, "run-1")
    second = _loaded(log, "run-2")
    third = _loaded(log, "run-3")
    changed = _loaded(log, "run-4", "policies: [] # edited\n")
    log.close()
    full = _data(db_path, first)
    assert full["files"][0]["text"] == "policies: []\n"
    assert full["policy_set_hash"] == policy_set_hash(full)
    digest = full["policy_set_hash"]
    assert _data(db_path, second) == {"policy_set_hash": digest, "same_as": first}
    assert _data(db_path, third) == {"policy_set_hash": digest, "same_as": first}
    edited = _data(db_path, changed)
    assert edited["files"][0]["text"] == "policies: [] # edited\n"
    assert edited["policy_set_hash"] != digest


def test_verify_accepts_references_and_names_a_dangling_one(
    open_log: Opener, db_path: Path, run_cli: Cli
) -> None:
    log = open_log()
    first = _loaded(log, "run-1")
    _loaded(log, "run-2")
    log.checkpoint()
    log.close()
    assert run_cli("verify").exit_code == 0

    log = open_log()
    digest = _data(db_path, first)["policy_set_hash"]
    # Written through the chain, as a writer that forges a reference would have to.
    later = log._append("policy_loaded", {"policy_set_hash": digest, "same_as": 99}, run="run-3")
    wrong = log._append(
        "policy_loaded", {"policy_set_hash": "0" * 64, "same_as": first}, run="run-4"
    )
    log.checkpoint()
    log.close()
    result = run_cli("verify", "--format", "json")
    assert result.exit_code != 0
    findings = json.loads(result.output)["findings"]
    dangling = sorted(f["seq"] for f in findings if f["code"] == "dangling_policy_ref")
    assert dangling == [later, wrong]


def test_empty_runs_write_a_reference_and_export_verify_and_report_still_work(
    sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    server = sandbox("--seed", "7", "--days", "100", "--sessions-per-day", "3")
    dep = deploy(server, tmp_path, NOTHING_DUE)
    for _ in range(3):
        dep.cli("run", "--yes", check=True)
    with closing(sqlite3.connect(dep.state_dir / "audit.db")) as conn:
        rows = conn.execute(
            "SELECT seq, event, run, length(data) FROM events ORDER BY seq"
        ).fetchall()
    starts = [seq for seq, event, _run, _size in rows if event == "run_started"]
    assert len(starts) == 3
    bounds = [*starts, rows[-1][0] + 1]
    per_run = [
        [(event, size) for seq, event, _run, size in rows if bounds[i] <= seq < bounds[i + 1]]
        for i in range(3)
    ]
    # The same rows each run (the count does not grow); only policy_loaded shrinks.
    assert [[event for event, _ in run] for run in per_run] == [
        [event for event, _ in per_run[0]]
    ] * 3
    loaded = [next(size for event, size in run if event == "policy_loaded") for run in per_run]
    assert loaded[1] == loaded[2] < loaded[0] / 2
    loaded_seqs = [seq for seq, event, _run, _size in rows if event == "policy_loaded"]
    assert _data(dep.state_dir / "audit.db", loaded_seqs[2])["same_as"] == loaded_seqs[0]

    verify = dep.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    events = dep.events()
    assert [e["event"] for e in events].count("policy_loaded") == 3
    report = dep.cli("audit", "report", "--out", str(tmp_path / "report.html"))
    assert report.returncode == 0, report.stderr
    assert "policies.yaml" in (tmp_path / "report.html").read_text()
