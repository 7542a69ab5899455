"""Owner notices through the real CLI, a sandbox and a real SMTP server on loopback.

The removals noticed are exactly those `plan --as-of now+N days` adds to today's plan, each
once across runs; a `notice: required` policy removes nothing its organizer was not told of;
no attendee name or address reaches a message or the record.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import Deployment

from retention.sandbox.account import _FIRST, _LAST
from retention.sandbox.policies import RECORDINGS_30D, policy_set, rule

DAYS = 7


def plan_keys(dep: Deployment, *args: str) -> set[tuple[int, str]]:
    done = dep.cli("plan", "--format", "json", *args, check=True)
    return {(int(i["sessionId"]), i["action"]) for i in json.loads(done.stdout)["items"]}


def noticed(dep: Deployment) -> set[tuple[int, str]]:
    with sqlite3.connect(dep.state_dir / "state.db") as conn:
        rows = conn.execute("SELECT session_id, action FROM notices_sent").fetchall()
    return {(int(sid), str(action)) for sid, action in rows}


def notice_env(url: str) -> dict[str, str]:
    return {
        "RETENTION_OWNER_NOTICE_DAYS": str(DAYS),
        "RETENTION_SMTP_URL": url,
        "RETENTION_NOTICE_FROM": "retention@example.com",
        "RETENTION_NOTICE_CONTACT": "legal@example.com",
    }


Noticing = Callable[[str], tuple[Deployment, Any, dict[str, str]]]


@pytest.fixture
def noticing(small: Callable[..., Deployment], smtp: tuple[Any, str]) -> Noticing:
    """Factory: the service on a small sandbox with `policies`, the mailbox, and the settings
    that send owner notices through it."""

    def build(policies: str) -> tuple[Deployment, Any, dict[str, str]]:
        box, url = smtp
        return small(policies), box, notice_env(url)

    return build


def assert_no_attendee(texts: list[str]) -> None:
    names = {f"{first} {last}" for first in _FIRST for last in _LAST}
    for text in texts:
        assert "guest.example.org" not in text
        assert not [name for name in names if name in text]


def test_notices_list_what_the_plan_ahead_adds_once_across_runs(noticing: Noticing) -> None:
    dep, box, env = noticing(RECORDINGS_30D)
    today = plan_keys(dep)
    ahead_at = (datetime.now(UTC) + timedelta(days=DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    expected = plan_keys(dep, "--as-of", ahead_at) - today
    assert expected, "the sandbox has recordings due within the week"

    first = dep.cli("run", "--yes", extra_env=env)

    assert first.returncode == 0, first.stderr
    assert noticed(dep) == expected
    events = [e for e in dep.events() if e["event"] == "notice_sent"]
    assert {s for e in events for s in e["details"]["sessions"]} == {sid for sid, _ in expected}
    assert len(box.messages) == len(events)
    assert len({e["organizerKey"] for e in events}) == len(events)
    for sender, recipients, message in box.messages:
        assert sender == "retention@example.com"
        assert len(recipients) == 1
        body = message.get_content()
        assert "legal@example.com" in body
        assert "recordings-30d" in body
        assert "the recording" in body
    exported = [json.dumps(e) for e in dep.events()]
    assert not [line for line in exported if "@example.com" in line]  # no address in the record
    assert_no_attendee([str(m) for _s, _r, m in box.messages] + exported)

    again = dep.cli("run", "--yes", extra_env=env)

    assert again.returncode == 0, again.stderr
    assert len(box.messages) == len(events)
    assert noticed(dep) == expected
    assert dep.cli("audit", "verify").returncode == 0
    report = dep.root / "report.html"
    assert dep.cli("audit", "report", "--out", str(report)).returncode == 0
    assert "guest.example.org" not in report.read_text()


NOTICED_SESSIONS = policy_set(rule("recordings", 30, notice="required"))


def test_notice_required_policy_removes_nothing_unnoticed(noticing: Noticing) -> None:
    dep, box, env = noticing(NOTICED_SESSIONS)

    plan = json.loads(dep.cli("plan", "--format", "json", extra_env=env, check=True).stdout)
    assert plan["items"] == []
    awaiting = [b for b in plan["blocked"] if b["by"] == "notice"]
    assert awaiting
    assert all(b["until"] for b in awaiting)
    since = len(dep.requests())

    first = dep.cli("run", "--yes", extra_env=env)
    second = dep.cli("run", "--yes", extra_env=env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert dep.deletes(since) == []
    told = noticed(dep)
    assert {(int(b["sessionId"]), b["action"]) for b in awaiting} <= told
    assert box.messages


NOTICED_CAPPED = policy_set(rule("recordings", 30, notice="required", limits="{max_deletions: 1}"))


def test_a_cap_counts_no_removal_awaiting_notice_and_keeps_no_organizer_untold(
    noticing: Noticing,
) -> None:
    dep, box, env = noticing(NOTICED_CAPPED)
    plan = json.loads(dep.cli("plan", "--format", "json", extra_env=env, check=True).stdout)
    awaiting = {(int(b["sessionId"]), b["action"]) for b in plan["blocked"] if b["by"] == "notice"}
    assert len(awaiting) > 1, "more removals await notice than the cap of one allows"
    assert plan["refused_policies"] == []  # nothing it would remove now: under its cap
    since = len(dep.requests())

    done = dep.cli("run", "--yes", extra_env=env)

    assert done.returncode == 0, done.stderr
    assert dep.deletes(since) == []
    assert awaiting <= noticed(dep)  # told, though the cap will refuse them all at once
    assert box.messages
    assert not [e for e in dep.events() if e["event"] == "refused"]


def test_notice_required_with_notices_off_is_invalid(small: Callable[..., Deployment]) -> None:
    dep = small(NOTICED_SESSIONS)

    done = dep.cli("plan")
    checked = dep.cli("validate")
    with_notices = dep.cli("validate", extra_env={"RETENTION_OWNER_NOTICE_DAYS": "7"})

    assert done.returncode == 2
    assert "RETENTION_OWNER_NOTICE_DAYS" in done.stderr
    assert "Traceback" not in done.stderr
    assert checked.returncode == 2
    assert "policies.yaml:" in checked.stderr
    assert "requires notice" in checked.stderr
    assert with_notices.returncode == 0, with_notices.stderr


def test_preview_prints_one_notice_from_the_last_inventory(
    small: Callable[..., Deployment],
) -> None:
    dep = small(RECORDINGS_30D, RETENTION_NOTICE_CONTACT="legal@example.com")
    dep.cli("inventory", check=True)
    since = len(dep.requests())

    done = dep.cli("notify", "preview", "--days", str(DAYS))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("To: ")
    assert "Subject: " in done.stdout
    assert "recordings-30d" in done.stdout
    assert "legal@example.com" in done.stdout
    assert dep.requests(since) == []  # read from the inventory, no scan
    assert_no_attendee([done.stdout])
