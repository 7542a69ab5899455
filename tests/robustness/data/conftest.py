"""Fixtures for the bad-data, bad-policy, two-instance, disk, audit and load scenarios.

`service(*sandbox_args, policies=YAML)` starts a real sandbox subprocess and returns a
`Service`: a state directory, a policy folder, and the environment that points the real CLI
(`python -m retention`, a subprocess) at that sandbox. `account_file(sessions)` writes a small
hand-made account whose sessions may carry the sandbox's `_raw` / `_omit` overrides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import Deployment as Service

from retention.sandbox.policies import policy_set, rule

DELETE_OLDER_THAN_1D = policy_set(rule("sessions", 1))


@pytest.fixture
def service(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Service]:
    """Factory: a sandbox started with `args` and the service deployed against it."""

    def build(*args: str, policies: str = DELETE_OLDER_THAN_1D, **env: str) -> Service:
        server = sandbox(*args)
        (tmp_path / "policies").mkdir(exist_ok=True)
        (tmp_path / "policies" / "policies.yaml").write_text(policies)
        return Service(
            server, tmp_path, server.service_env(tmp_path / "state", tmp_path / "policies", **env)
        )

    return build


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def session_entry(
    session_id: int, ended_ago: timedelta, *, meeting_id: int = 100001, **extra: Any
) -> dict[str, Any]:
    """A 30-minute session of `meeting_id` that ended `ended_ago` before the real now."""
    end = datetime.now(UTC).replace(microsecond=0) - ended_ago
    return {
        "sessionId": session_id,
        "meetingId": meeting_id,
        "startTime": iso(end - timedelta(minutes=30)),
        "endTime": iso(end),
        "attendeeCount": 2,
        **extra,
    }


@pytest.fixture
def account_file(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    """Factory: an account file of two organizers in one group with these sessions."""

    def write(sessions: list[dict[str, Any]]) -> Path:
        document = {
            "accountKey": "7000001",
            "groups": [{"groupKey": 10, "groupName": "Sales"}],
            "organizers": [
                {
                    "organizerKey": key,
                    "email": f"o{key}@example.com",
                    "firstName": "Ana",
                    "lastName": "Lee",
                    "groupKey": 10,
                }
                for key in (1001, 1002)
            ],
            "meetings": [
                {
                    "meetingId": meeting_id,
                    "organizerKey": organizer,
                    "subject": "Weekly sync",
                    "meetingType": "recurring",
                }
                for meeting_id, organizer in ((100001, 1001), (100002, 1002))
            ],
            "sessions": sessions,
        }
        path = tmp_path / "account.json"
        path.write_text(json.dumps(document))
        return path

    return write
