"""Upgrading: a state directory and an audit record made by the previous release open, migrate,
verify and take a run (tests/fixtures/previous-release, made by make_previous_release.py)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from facts_support import deleted_paths, run_once, sandbox_app, settings_for

from retention.audit.verify import verify_log
from retention.engine.state import open_state_db
from retention.sandbox.datafile import load_account
from retention.sandbox.policies import policy_set, rule

pytestmark = pytest.mark.anyio
FIXTURE = Path(__file__).parent.parent / "fixtures" / "previous-release"
HELD = 960003  # kept by a hold in the previous release's run; its policies here have none


def upgraded(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    state.mkdir()
    for name in ("state.db", "audit.db", "audit-checkpoints.jsonl"):
        shutil.copy(FIXTURE / name, state / name)
    return state


def key_types(path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT seq, event, typeof(session_id) FROM events WHERE session_id IS NOT NULL"
        ).fetchall()


async def test_a_previous_release_state_directory_and_record_upgrade_and_take_a_run(
    tmp_path: Path,
) -> None:
    state = upgraded(tmp_path)
    before = key_types(state / "audit.db")
    assert before, "the fixture recorded removals"
    assert {kind for _seq, _event, kind in before} == {"integer"}
    app = sandbox_app(load_account(FIXTURE / "account.json"))

    ran = await run_once(app, settings_for(tmp_path, policy_set(rule("sessions", 1))))

    assert ran.result.result == "ok"
    assert deleted_paths(app) == [f"/G2M/rest/organizers/1001/sessions/{HELD}"]
    after = key_types(state / "audit.db")
    # Rows written before keep their integers (and their hashes); new rows store text.
    assert after[: len(before)] == before
    assert {kind for _seq, _event, kind in after[len(before) :]} == {"text"}
    report = verify_log(state / "audit.db", checkpoint_file=state / "audit-checkpoints.jsonl")
    assert report.clean, report.findings
    # The inventory's keys became text with every row kept.
    with sqlite3.connect(state / "state.db") as db:
        assert db.execute("SELECT DISTINCT typeof(organizer_key) FROM organizers").fetchall() == [
            ("text",)
        ]
        removed = db.execute(
            "SELECT removed_at IS NOT NULL FROM sessions WHERE session_id = ?", [str(HELD)]
        ).fetchone()
    assert removed == (1,)


async def test_a_previous_release_record_verifies_once_migrated_without_a_run(
    tmp_path: Path,
) -> None:
    state = upgraded(tmp_path)
    untouched = verify_log(state / "audit.db", checkpoint_file=state / "audit-checkpoints.jsonl")
    assert untouched.clean, untouched.findings


def test_a_previous_release_inventory_keeps_its_identities_for_later_reads(
    tmp_path: Path,
) -> None:
    state = upgraded(tmp_path)
    db = open_state_db(state / "state.db")
    rows = db.execute(
        "SELECT session_id, start_time, identity_start, end_time, identity_end FROM sessions"
    ).fetchall()
    db.close()
    assert rows
    assert all(start == identity and end == last for _, start, identity, end, last in rows)
    assert {type(session_id) for session_id, *_ in rows} == {str}
