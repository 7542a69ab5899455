"""`retention plan show FILE`: a plan file or a proposal as `plan` shows a plan, with its
approvals, read from the file alone (no API: the settings name none that answers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records
from approvers import make_key
from click.testing import CliRunner, Result
from plans import load_folder

from retention.approvals.proposals import write_proposal
from retention.cli.app import cli
from retention.cli.render import write_plan_json
from retention.engine.admission import Admission, admit
from retention.engine.plan import Plan
from retention.sandbox.policies import BOARD_7Y, policy_set, rule
from retention.settings import Settings

NOW = datetime(2026, 11, 23, tzinfo=UTC)
POLICIES = policy_set(
    rule("sessions", 30, limits="{max_deletions: 2}"),
    rule("recordings", "7d"),
    rule("attendees", 60),
    BOARD_7Y,
)


def made_plan(tmp_path: Path) -> Plan:
    """Removals under two policies, one refused by its cap, one by a name, a board meeting
    retained."""
    sessions = [
        records.ended(n, at=NOW - timedelta(days=days), recording_id=f"r{n}", recording_bytes=9)
        for n, days in [(1, 70), (2, 40), (3, 71), (4, 45)]
    ]
    sessions.append(
        records.ended(5, at=NOW - timedelta(days=50), subject="Board meeting", attendee_count=3)
    )
    admission = Admission(
        load_folder(tmp_path / "policies", POLICIES),
        NOW,
        unknown={"attendees-60d": "unknown:Finanse"},
        noticed={},
        notice_days=7,
    )
    return admit(lambda: sessions, admission, plan_id="plan-1", created_at=NOW)


def written(plan: Plan, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        write_plan_json(plan.document(), handle)
    return path


def show(*args: str, **env: str) -> Result:
    # An API that nothing answers: showing must not need one.
    env = {
        "RETENTION_CONFIG": "",
        "RETENTION_API_BASE_URL": "http://127.0.0.1:1/G2M/rest",
        "COLUMNS": "80",
        **env,
    }
    return CliRunner().invoke(cli, ["plan", "show", *args], env=env)


def test_a_plan_file_is_shown_as_plan_shows_a_plan_at_80_columns(tmp_path: Path) -> None:
    plan = made_plan(tmp_path)
    shown = show(str(written(plan, tmp_path / "plan.json")))
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert f"Plan plan-1 as of {plan.document()['as_of']}" in out
    assert "Removals by policy" in out
    assert "recordings-7d" in out
    assert "Blocked (not removed)" in out
    assert "retain:board-7y" in out
    assert "cap:sessions-30d" in out
    assert "refused: policy sessions-30d would make 4 removals, over its max_deletions of 2" in (
        " ".join(out.split())
    )
    assert "refused: policy attendees-60d (unknown:Finanse); its removals are blocked" in (
        " ".join(out.split())
    )
    assert "approvals: 0 of 0 approvals" in out
    assert "Removals\n" not in out  # the items only with --items


def sections(out: str) -> dict[str, list[str]]:
    """The lines under each title of the --items tables (the first `Blocked` is the summary)."""
    found: dict[str, list[str]] = {}
    current: list[str] = []
    for line in out.splitlines():
        title = line.strip()
        if title in ("Removals", "Blocked (not removed)", "Unknown (not removed)"):
            current = found[title if title not in found else f"{title} items"] = []
            continue
        current.append(line)
    return found


def test_items_lists_each_removal_and_each_blocked_one(tmp_path: Path) -> None:
    plan = made_plan(tmp_path)
    shown = show(str(written(plan, tmp_path / "plan.json")), "--items")
    assert shown.exit_code == 0, shown.output
    found = sections(shown.stdout)
    removals = [line for line in found["Removals"] if "delete_recordings" in line]
    assert [line.split()[0] for line in removals] == [str(i.session_id) for i in plan.items]
    blocked = "\n".join(found["Blocked (not removed) items"])
    assert blocked.count("retain:board-7y") == 1
    assert blocked.count("unknown:Finanse") == 2
    assert blocked.count("cap:sessions-30d") == 4
    assert "2033-10-04 00:00" in blocked  # until the retain rule lets it go


def test_json_has_the_plan_and_its_approvals_and_items_only_when_asked(tmp_path: Path) -> None:
    plan = made_plan(tmp_path)
    path = written(plan, tmp_path / "plan.json")
    shown = show(str(path), "--format", "json")
    assert shown.exit_code == 0, shown.output
    found = json.loads(shown.stdout)
    document = plan.document()
    assert found["file"] == str(path)
    assert found["approvals"] == {"valid": 0, "needed": 0, "principals": [], "not_counted": []}
    assert found["plan"]["summary"] == document["summary"]
    assert found["plan"]["refused"] == document["refused"]
    assert "items" not in found["plan"]
    with_items = json.loads(show(str(path), "--format", "json", "--items").stdout)
    assert with_items["plan"] == document


def test_an_altered_plan_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    document = made_plan(tmp_path).document()
    document["items"] = document["items"][1:]
    path = tmp_path / "altered.json"
    with path.open("w", encoding="utf-8") as handle:
        write_plan_json(document, handle)
    shown = show(str(path))
    assert shown.exit_code == 3
    assert f"{path}: the plan file was altered" in shown.stderr
    assert shown.stdout == ""


def review_settings(tmp_path: Path, approvers: Path) -> Settings:
    return Settings(
        api_base_url="http://127.0.0.1:1/G2M/rest",
        state_dir=tmp_path / "state",
        policy_dir=tmp_path / "policies",
        daemon_mode="review",
        approvers=str(approvers),
        approvals_required=2,
    )


def test_a_proposal_is_shown_with_the_approvals_that_count(tmp_path: Path) -> None:
    ana, bo = make_key(tmp_path / "keys", "ana"), make_key(tmp_path / "keys", "bo")
    approvers = tmp_path / "approvers"
    approvers.write_text(f"ana {ana.public_line}\nbo {bo.public_line}\n")
    settings = review_settings(tmp_path, approvers)
    proposal = write_proposal(settings, made_plan(tmp_path).document())
    env = {
        "RETENTION_STATE_DIR": str(tmp_path / "state"),
        "RETENTION_DAEMON_MODE": "review",
        "RETENTION_APPROVERS": str(approvers),
        "RETENTION_APPROVALS_REQUIRED": "2",
    }
    approved = CliRunner().invoke(
        cli, ["approve", str(proposal), "--key", str(ana.key)], env={"RETENTION_CONFIG": "", **env}
    )
    assert approved.exit_code == 0, approved.output
    # bo's line signs another plan: it does not count.
    line = json.loads(proposal.with_name(proposal.name + ".approvals").read_text())
    forged = {**line, "principal": "bo", "fingerprint": bo.fingerprint}
    with proposal.with_name(proposal.name + ".approvals").open("a") as handle:
        handle.write(json.dumps(forged) + "\n")

    shown = show(str(proposal), **env)
    assert shown.exit_code == 0, shown.output
    assert "approvals: 1 of 2 approvals (ana)" in shown.stdout
    assert "not counted: line 2 (bo)" in " ".join(shown.stdout.split())
    as_json = json.loads(show(str(proposal), "--format", "json", **env).stdout)
    assert as_json["approvals"]["valid"] == 1
    assert as_json["approvals"]["needed"] == 2
    assert as_json["approvals"]["principals"] == ["ana"]
    assert len(as_json["approvals"]["not_counted"]) == 1


@pytest.mark.parametrize("args", [[], ["--format", "json"]])
def test_plan_without_a_subcommand_still_takes_its_options(tmp_path: Path, args: list[str]) -> None:
    # No folder to read: `plan` itself ran (and refused), not `show` or a usage error.
    shown = CliRunner().invoke(
        cli,
        ["plan", "--policy", "nope", *args],
        env={"RETENTION_CONFIG": "", "RETENTION_POLICY_DIR": str(tmp_path / "absent")},
    )
    assert shown.exit_code == 2
    assert "No such command" not in shown.output
    assert "absent" in shown.stderr
