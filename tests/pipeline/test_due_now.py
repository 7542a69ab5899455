"""Removes only what is due now, in the account it was planned for (the real CLI, the sandbox).

One test per way a plan or a run used to remove what the policies do not call for: a plan dated
in the future, a clock the API disagrees with, an organizer moved under a hold after planning,
another account, reconciliation reading the wrong history. Each checks the outcome or refusal by
name and, in the sandbox's request log, that nothing was sent that should not have been.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from support import Deployment, reaped

from retention.sandbox.policies import policy_set, rule

SMALL = ("--organizers", "6", "--groups", "2", "--days", "60")
SESSIONS_30D = """
policies:
  - name: sessions-30d
    description: Whole sessions go 30 days after they ended.
    action: delete_session
    after: 30d
"""


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def refusals(dep: Deployment) -> list[dict[str, Any]]:
    return [e for e in dep.events() if e["event"] == "refused"]


def plan_items(dep: Deployment, plan_file: Path, *args: str) -> list[dict[str, Any]]:
    dep.cli("plan", *args, "--out", str(plan_file), check=True)
    items: list[dict[str, Any]] = json.loads(plan_file.read_text())["items"]
    return items


def test_apply_refuses_a_plan_dated_in_the_future_as_a_preview(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*SMALL, policies=SESSIONS_30D)
    plan_file = tmp_path / "future.json"
    items = plan_items(dep, plan_file, "--as-of", "2040-01-01")
    assert items, "far in the future, every session is due"

    result = dep.cli("apply", str(plan_file), "--yes")

    assert result.returncode == 3, result.stderr
    assert "preview" in result.stderr
    assert "Traceback" not in result.stderr
    assert [e["reason"] for e in refusals(dep)] == ["preview_plan"]
    assert dep.deletes() == []


def test_a_run_whose_clock_the_api_contradicts_removes_nothing(deployment: Any) -> None:
    # The API's Date an hour behind the host: the host clock runs fast, seen from the API.
    dep = deployment(*SMALL, "--date-offset", "-3600", policies=SESSIONS_30D)

    result = dep.cli("run", "--yes")

    assert result.returncode == 3, result.stderr
    assert "RETENTION_MAX_CLOCK_SKEW" in result.stderr
    assert "Traceback" not in result.stderr
    assert [e["reason"] for e in refusals(dep)] == ["clock_skew"]
    assert dep.deletes() == []

    dep.server.control(date_offset=0)
    assert dep.cli("run", "--yes").returncode == 0, "with the clocks agreeing it runs"
    assert dep.deletes()


def test_an_organizer_moved_under_a_hold_after_the_plan_keeps_every_session(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*SMALL, policies=SESSIONS_30D)
    whole = plan_items(dep, tmp_path / "whole.json")
    with sqlite3.connect(dep.state_dir / "state.db") as db:
        rows = db.execute("SELECT organizer_key, group_key FROM organizers").fetchall()
    groups = {int(organizer): group for organizer, group in rows}
    organizers = {int(item["organizerKey"]) for item in whole}
    held_group, moved = next(
        (groups[one], other)
        for one in sorted(organizers)
        for other in sorted(organizers)
        if groups[other] != groups[one]
    )
    (dep.policy_dir / "hold.yaml").write_text(
        "holds:\n"
        "  - id: LIT-MOVED\n"
        "    reason: Litigation covering one group.\n"
        f"    scope: {{groups: [{held_group}]}}\n"
    )
    plan_file = tmp_path / "plan.json"
    items = plan_items(dep, plan_file)
    dep.server.control(move_organizer={"organizerKey": moved, "groupKey": str(held_group)})

    result = dep.cli("apply", str(plan_file), "--yes")

    assert result.returncode == 0, result.stderr
    moved_items = {int(i["sessionId"]) for i in items if int(i["organizerKey"]) == moved}
    assert moved_items
    outcomes = {int(e["sessionId"]): e for e in dep.events() if e["event"] == "outcome"}
    assert {outcomes[s]["outcome"] for s in moved_items} == {"skipped_hold"}
    assert all("LIT-MOVED" in outcomes[s]["reason"] for s in moved_items)
    assert not any(f"/organizers/{moved}/" in d["path"] for d in dep.deletes())
    assert moved_items <= set(dep.server.state()["session_ids"])
    assert dep.deletes(), "the sessions of organizers outside the hold were removed"


def test_a_plan_and_a_state_directory_refuse_another_account(
    deployment: Any, sandbox: Any, tmp_path: Path
) -> None:
    # Both accounts take the same credentials, as one integration's could.
    same_token = "--no-rotate-refresh-tokens"
    dep = deployment(*SMALL, same_token, policies=SESSIONS_30D)
    plan_file = tmp_path / "plan.json"
    assert plan_items(dep, plan_file)
    other = sandbox("--seed", "8", *SMALL, same_token)
    elsewhere = {"RETENTION_API_BASE_URL": other.api_url, "RETENTION_TOKEN_URL": other.token_url}
    account_a = json.loads(plan_file.read_text())["account_key"]
    assert account_a == "7000007"

    applied = dep.cli("apply", str(plan_file), "--yes", extra_env=elsewhere)

    assert applied.returncode == 3, applied.stderr
    assert "Traceback" not in applied.stderr
    assert [e["reason"] for e in refusals(dep)] == ["other_account"]

    ran = dep.cli("run", "--yes", extra_env=elsewhere)

    assert ran.returncode == 3, ran.stderr
    said = ran.stderr.replace("\n", " ")
    assert "account 7000007" in said
    assert "account 7000008" in said
    assert [e["reason"] for e in refusals(dep)] == ["other_account", "other_account"]
    planned_elsewhere = dep.cli("plan", extra_env=elsewhere)
    assert planned_elsewhere.returncode == 3, planned_elsewhere.stderr
    assert "account 7000008" in planned_elsewhere.stderr.replace("\n", " ")
    assert dep.deletes() == []
    read_at_b = [r["path"] for r in other.requests() if r["method"] != "POST"]
    assert not any("historicalMeetings" in path for path in read_at_b), "refused before scanning"
    assert not any(r["method"] == "DELETE" for r in other.requests())


@pytest.mark.e2e
@pytest.mark.parametrize("failpoint", ["after_intent=2", "after_send=2"])
def test_reconciliation_after_a_crash_reads_the_organizers_own_history(
    deployment: Any, tmp_path: Path, failpoint: str
) -> None:
    dep = deployment(*SMALL, policies=SESSIONS_30D)
    dep.env["RETENTION_CONCURRENCY"] = "1"
    plan_file = tmp_path / "plan.json"
    items = plan_items(dep, plan_file)
    crashed = dep.cli(
        "apply",
        str(plan_file),
        "--yes",
        extra_env={"RETENTION_FAILPOINTS": failpoint},
        process=True,
    )
    assert crashed.returncode == -signal.SIGKILL
    pending = [e for e in dep.events() if e["event"] == "intent"][-1]["sessionId"]
    sent_before = Counter(d["path"] for d in dep.deletes())
    mark = len(dep.requests())

    dep.cli("run", "--yes", check=True)

    after = dep.requests(mark)
    assert not any("/meetings/" in r["path"] and "historicalMeetings" in r["path"] for r in after)
    outcomes = [e for e in dep.events() if e["event"] == "outcome" and e["sessionId"] == pending]
    assert [e["outcome"] for e in outcomes] == ["deleted"]
    assert int(pending) not in dep.server.state()["session_ids"]
    resent = [d for d in dep.deletes(mark) if d["path"].endswith(f"/sessions/{pending}")]
    # Sent before the crash: read as gone, not sent again; never sent: sent now, once.
    was_sent = any(path.endswith(f"/sessions/{pending}") for path in sent_before)
    assert len(resent) == (0 if was_sent else 1)
    left = {int(i["sessionId"]) for i in items} & set(dep.server.state()["session_ids"])
    assert left == set()


KEEP_EVERYTHING = """
policies:
  - name: keep-all-10y
    description: Everything is kept ten years (added after the crash).
    action: retain
    after: 10y
"""


@pytest.mark.e2e
def test_an_intent_left_pending_is_decided_again_before_it_is_sent_again(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*SMALL, policies=SESSIONS_30D)
    dep.env["RETENTION_CONCURRENCY"] = "1"
    plan_file = tmp_path / "plan.json"
    plan_items(dep, plan_file)
    crashed = dep.cli(
        "apply",
        str(plan_file),
        "--yes",
        extra_env={"RETENTION_FAILPOINTS": "after_intent=1"},
        process=True,
    )
    assert crashed.returncode == -signal.SIGKILL
    pending = [e for e in dep.events() if e["event"] == "intent"][-1]["sessionId"]
    assert int(pending) in dep.server.state()["session_ids"], "killed before its DELETE"
    (dep.policy_dir / "keep.yaml").write_text(KEEP_EVERYTHING)
    mark = len(dep.requests())

    ran = dep.cli("run", "--yes", check=True)

    assert dep.deletes(mark) == []  # the retain rule in force now wins over the intent
    assert int(pending) in dep.server.state()["session_ids"]
    (outcome,) = [e for e in dep.events() if e["event"] == "outcome" and e["sessionId"] == pending]
    assert outcome["outcome"] == "skipped_changed"
    assert "keep-all-10y" in json.dumps(outcome), outcome
    said = " ".join((ran.stdout + ran.stderr).split())
    assert "Left pending by an earlier run, reconciled first: 1 skipped_changed" in said
    assert dep.cli("audit", "verify").returncode == 0


CAPPED_AND_FREE = policy_set(
    rule(
        "recordings",
        30,
        description="Recordings go after 30 days, at most 2 per run.",
        limits="{max_deletions: 2}",
    ),
    rule("attendees", 30, description="Attendee lists go after 30 days."),
)


def test_a_cap_refuses_its_own_policy_while_the_other_policys_removals_are_made(
    deployment: Any,
) -> None:
    dep = deployment(*SMALL, policies=CAPPED_AND_FREE)

    result = dep.cli("run", "--yes")

    assert result.returncode == 3, result.stderr
    assert "policy recordings-30d refused" in result.stderr
    assert "the other policies' removals were made" in result.stderr
    (refused,) = refusals(dep)
    assert refused["reason"] == "cap"
    details = refused["details"]["details"]  # the export's details column holds the event's
    assert (details["policy"], details["cap"], details["limit"]) == (
        "recordings-30d",
        "max_deletions",
        2,
    )
    assert details["count"] > 2
    paths = [d["path"] for d in dep.deletes()]
    assert not any(path.endswith("/recordings") for path in paths)
    assert paths
    assert all(path.endswith("/attendees") for path in paths)


@pytest.mark.e2e
def test_after_sigterm_no_new_delete_starts_and_no_item_gets_more_than_two(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*SMALL, "--latency-ms", "100", policies=SESSIONS_30D)
    dep.env.update({"RETENTION_CONCURRENCY": "2", "RETENTION_CALL_DEADLINE": "2"})
    plan_file = tmp_path / "plan.json"
    items = plan_items(dep, plan_file)
    assert len(items) >= 10
    proc = dep.popen("apply", str(plan_file), "--yes")
    with reaped(proc):
        wait_for(lambda: len(dep.deletes()) >= 3)
        dep.server.control(hang=True)
        # Every worker waits on a hung DELETE: none can start another before the signal.
        wait_for(lambda: sum(d["status"] is None for d in dep.deletes()) == 2)
        mark = len(dep.requests())
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    assert dep.requests(mark) == [], "after SIGTERM nothing is sent, not even a retry"
    dep.server.control(hang=False)

    dep.cli("run", "--yes", check=True)

    per_item = Counter(d["path"] for d in dep.deletes())
    assert max(per_item.values()) <= 2, per_item.most_common(3)
    left = {int(i["sessionId"]) for i in items} & set(dep.server.state()["session_ids"])
    assert left == set()
    verify = dep.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout


def test_a_hold_placed_after_the_plan_holds_its_sessions_and_leaves_the_plan_valid(
    deployment: Any, tmp_path: Path
) -> None:
    dep = deployment(*SMALL, policies=SESSIONS_30D)
    plan_file = tmp_path / "plan.json"
    items = plan_items(dep, plan_file)
    held = int(items[0]["organizerKey"])
    (dep.policy_dir / "hold.yaml").write_text(
        "holds:\n"
        "  - id: LIT-LATE\n"
        "    reason: Placed after the plan was made.\n"
        f"    scope: {{organizers: [{held}]}}\n"
    )

    result = dep.cli("apply", str(plan_file), "--yes")

    assert result.returncode == 0, result.stderr
    held_items = {int(i["sessionId"]) for i in items if int(i["organizerKey"]) == held}
    outcomes = {int(e["sessionId"]): e["outcome"] for e in dep.events() if e["event"] == "outcome"}
    assert {outcomes[s] for s in held_items} == {"skipped_hold"}
    assert not any(f"/organizers/{held}/" in d["path"] for d in dep.deletes())
    assert len(dep.deletes()) == len(items) - len(held_items)
