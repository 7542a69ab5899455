"""A small hand-written account whose every expected answer can be read off the document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from retention.sandbox import Account, load_account

ANA, BO = 1001, 1002
WEEKLY, BOARD, ADHOC = 500000001, 500000002, 500000003
BIG_GROUP = 20


def tiny_document() -> dict[str, Any]:
    """Ana (admin) and Bo in Sales; 51 idle organizers in group 20; six sessions."""
    big = [
        {
            "organizerKey": 2001 + n,
            "email": f"idle{n}@example.com",
            "firstName": "Idle",
            "lastName": f"N{n}",
            "groupKey": BIG_GROUP,
        }
        for n in range(51)
    ]
    return {
        "accountKey": "7000001",
        "now": "2026-11-23T12:00:00Z",
        "groups": [
            {"groupKey": 10, "groupName": "Sales", "parentKey": 10, "status": "active"},
            {"groupKey": BIG_GROUP, "groupName": "Everyone", "parentKey": BIG_GROUP},
        ],
        "organizers": [
            {
                "organizerKey": ANA,
                "email": "ana@example.com",
                "firstName": "Ana",
                "lastName": "Lee",
                "groupKey": 10,
                "status": "active",
                "products": ["G2M"],
                "maxNumAttendeesAllowed": 250,
                "locale": "en_US",
            },
            {
                "organizerKey": BO,
                "email": "bo@example.com",
                "firstName": "Bo",
                "lastName": "Chen",
                "groupKey": 10,
                "locale": "de_DE",
            },
            *big,
        ],
        "meetings": [
            {
                "meetingId": WEEKLY,
                "organizerKey": ANA,
                "subject": "Weekly sync",
                "meetingType": "recurring",
                "conferenceCallInfo": "VoIP",
                "passwordRequired": False,
            },
            {
                "meetingId": BOARD,
                "organizerKey": BO,
                "subject": "Board prep",
                "meetingType": "scheduled",
                "conferenceCallInfo": "Hybrid",
                "passwordRequired": True,
            },
            {
                "meetingId": ADHOC,
                "organizerKey": ANA,
                "subject": "Quick call",
                "meetingType": "immediate",
            },
        ],
        "sessions": [
            {
                "sessionId": 900001,
                "meetingId": WEEKLY,
                "startTime": "2026-11-02T10:00:00Z",
                "endTime": "2026-11-02T10:45:00Z",
                "attendees": [
                    {
                        "name": "Cy Diaz",
                        "email": "cy@example.org",
                        "joinTime": "2026-11-02T10:01:00Z",
                        "leaveTime": "2026-11-02T10:44:00Z",
                    },
                    {
                        "name": "Di Eve",
                        "email": "di@example.org",
                        "joinTime": "2026-11-02T10:05:00Z",
                        "leaveTime": "2026-11-02T10:35:00Z",
                    },
                ],
                "recording": {
                    "recordingId": "rec-900001",
                    "recordingName": "Weekly sync",
                    "fileSize": 73400320,
                    "transcript": True,
                    "aiSummary": False,
                },
            },
            {
                "sessionId": 900002,
                "meetingId": WEEKLY,
                "startTime": "2026-11-09T10:00:00Z",
                "endTime": "2026-11-09T10:30:00Z",
                "attendees": [],
            },
            {
                "sessionId": 900003,
                "meetingId": WEEKLY,
                "startTime": "2026-11-23T11:30:00Z",
                "endTime": "2026-11-23T12:30:00Z",
            },
            {
                "sessionId": 900004,
                "meetingId": BOARD,
                "startTime": "2026-11-10T15:00:00Z",
                "endTime": "",
                "attendees": [
                    {
                        "name": "Ed Fox",
                        "email": "ed@example.org",
                        "joinTime": "2026-11-10T15:00:00Z",
                        "leaveTime": "",
                    }
                ],
            },
            {
                "sessionId": 900005,
                "meetingId": ADHOC,
                "startTime": "2026-11-16T09:00:00Z",
                "endTime": "2026-11-16T09:20:00Z",
                "attendeeCount": 3,
            },
            {
                "sessionId": 900006,
                "meetingId": WEEKLY,
                "startTime": "2026-11-30T10:00:00Z",
                "endTime": "2026-11-30T10:45:00Z",
            },
        ],
    }


@pytest.fixture
def tiny_account(tmp_path: Path) -> Callable[[], Account]:
    """Factory: a fresh Account loaded from the tiny document written to a file."""

    def load() -> Account:
        path = tmp_path / "tiny.json"
        path.write_text(json.dumps(tiny_document()))
        return load_account(path)

    return load


@pytest.fixture
def tiny(sandbox_asgi: Any, tiny_account: Callable[[], Account]) -> Any:
    """The tiny account served in-process."""
    return sandbox_asgi(tiny_account())
