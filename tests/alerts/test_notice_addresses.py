"""One organizer's bad address is that organizer's problem: a line break, no `@` or an
over-long address fails that organizer's notice, logged and alerted by organizer key (never the
address); the other organizers are told, the run's removals go on, and a removal that waits
for the notice keeps waiting."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from receivers import Receiver

from retention.alerts.mail import address_problem
from retention.sandbox.policies import policy_set, rule

from .test_owner_notices import notice_env

NOW = datetime.now(UTC).replace(microsecond=0)
GOOD = {1001: "ana@example.com", 1004: "dan@example.com"}
BAD = {
    1002: "bo@example.com\r\nBcc: everyone@example.com",
    1003: "no-at-sign.example.com",
    1005: "x" * 250 + "@example.com",
}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def account(tmp_path: Path) -> Path:
    """Five organizers, each one meeting with a recording due now (session 900000 + key) and
    one due in four days (800000 + key), within the week the notices look ahead."""
    organizers = {**GOOD, **BAD}
    ends = {900000: NOW - timedelta(days=40), 800000: NOW - timedelta(days=26)}
    document = {
        "accountKey": "7000001",
        "groups": [{"groupKey": 10, "groupName": "Sales"}],
        "organizers": [
            {"organizerKey": key, "email": email, "firstName": "A", "lastName": "B", "groupKey": 10}
            for key, email in sorted(organizers.items())
        ],
        "meetings": [
            {
                "meetingId": 100000 + key,
                "organizerKey": key,
                "subject": "Sync",
                "meetingType": "recurring",
            }
            for key in sorted(organizers)
        ],
        "sessions": [
            {
                "sessionId": base + key,
                "meetingId": 100000 + key,
                "startTime": iso(end - timedelta(minutes=30)),
                "endTime": iso(end),
                "attendeeCount": 2,
                "recording": {"recordingId": f"r{base + key}", "recordingName": "r", "fileSize": 9},
            }
            for key in sorted(organizers)
            for base, end in ends.items()
        ],
    }
    path = tmp_path / "account.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    "address", [*BAD.values(), "a@b@c.com", "a@x.com, b@y.com", "", "@example.com"]
)
def test_an_address_no_message_may_go_to_is_refused_without_repeating_it(address: str) -> None:
    problem = address_problem(address)
    assert problem is not None
    assert address not in problem or not address


def test_ordinary_addresses_pass() -> None:
    assert all(address_problem(address) is None for address in GOOD.values())


@pytest.mark.parametrize("notice", ["informational", "required"])
def test_the_other_organizers_are_told_and_their_removals_go_on(
    sandbox: Callable[..., Any],
    tmp_path: Path,
    smtp: tuple[Any, str],
    receiver: Receiver,
    notice: str,
) -> None:
    from support import deploy  # noqa: PLC0415

    box, url = smtp
    server = sandbox("--data", str(account(tmp_path)))
    required = notice == "required"
    policies = policy_set(rule("recordings", 30, **({"notice": "required"} if required else {})))
    dep = deploy(server, tmp_path, policies, RETENTION_NOTIFY=receiver.url, **notice_env(url))

    done = dep.cli("run", "--yes")

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    told = sorted(
        recipient for _sender, recipients, _mail in box.messages for recipient in recipients
    )
    assert told == sorted(GOOD.values())
    with sqlite3.connect(dep.state_dir / "state.db") as db:
        noticed = {int(key) for (key,) in db.execute("SELECT organizer_key FROM notices_sent")}
    assert noticed == set(GOOD)
    removed = {int(re.findall(r"/organizers/(\d+)/", r["path"])[0]) for r in dep.deletes()}
    # Informational notices: every organizer's removal goes on, the bad addresses' too. A
    # notice the policy requires: none yet (the told wait their days), and the others wait on.
    assert removed == (set() if required else set(GOOD) | set(BAD))
    if required:
        plan = json.loads(dep.cli("plan", "--format", "json", check=True).stdout)
        waiting = {int(b["sessionId"]) for b in plan["blocked"] if b["by"] == "notice"}
        assert {900000 + key for key in BAD} <= waiting
    for key in BAD:
        assert f"organizer={key}" in done.stderr or f'"organizer": {key}' in done.stderr
    alerts = [m for m in receiver.received if "invalid addresses" in str(m["title"])]
    assert len(alerts) == 1
    assert all(str(key) in str(alerts[0]["message"]) for key in BAD)
    record = dep.cli("audit", "export", "--format", "jsonl", check=True).stdout
    everything = done.stderr + done.stdout + record + json.dumps(receiver.received)
    for address in BAD.values():
        assert address.split("@")[0] not in everything
