"""A whole run on the in-process sandbox (ASGI): a hand-made account, policies, the real pipeline.

`account_of(sessions)` builds an account of two organizers (keys given) from session entries
that may carry the sandbox's `_raw` / `_omit` overrides; `run_once` runs `retention run --yes`
in-process against it and returns the result, the state database and the audit record's rows.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from retention.engine.state import open_state_db
from retention.sandbox import Account, create_app
from retention.sandbox.datafile import load_account
from retention.service import pipeline
from retention.service.context import RunContext, client
from retention.service.reading import scan_as_set
from retention.service.result import RunResult
from retention.settings import Settings

ORGANIZERS = (1001, 1002)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry(
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


def account_of(
    tmp_path: Path,
    sessions: list[dict[str, Any]],
    *,
    organizers: tuple[int, int] = ORGANIZERS,
    meetings: dict[int, int] | None = None,
) -> Account:
    """Two organizers in one group; `meetings` maps meeting id to the index of its organizer
    (default: 100001, 100003 the first's, 100002 the second's)."""
    owned = meetings or {100001: 0, 100002: 1, 100003: 0}
    document = {
        "accountKey": "7000001",
        "groups": [{"groupKey": 10, "groupName": "Sales"}],
        "organizers": [
            {
                "organizerKey": key,
                "email": f"o{index}@example.com",
                "firstName": "Ana",
                "lastName": "Lee",
                "groupKey": 10,
            }
            for index, key in enumerate(organizers)
        ],
        "meetings": [
            {
                "meetingId": meeting_id,
                "organizerKey": organizers[index],
                "subject": "Weekly sync",
                "meetingType": "recurring",
            }
            for meeting_id, index in owned.items()
        ],
        "sessions": sessions,
    }
    path = tmp_path / "account.json"
    path.write_text(json.dumps(document))
    return load_account(path)


@dataclass
class Ran:
    """One run's result, with where to read what it left."""

    result: RunResult
    state_dir: Path

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.state_dir / "state.db") as db:
            return db.execute(sql, params).fetchall()

    def audit(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.state_dir / "audit.db") as db:
            return db.execute(sql, params).fetchall()

    @property
    def plan(self) -> dict[str, Any]:
        assert self.result.plan is not None
        return self.result.plan.document()


def settings_for(tmp_path: Path, policies: str, **changes: Any) -> Settings:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir(exist_ok=True)
    (policy_dir / "policies.yaml").write_text(policies)
    # A fixed start (as the sandbox fixtures use): the previous release's fixture stays in reach.
    scan_start = "2026-06-01"
    return Settings(
        api_base_url="http://127.0.0.1/G2M/rest",
        token_url="http://127.0.0.1/oauth/token",
        client_id="sandbox-client",
        client_secret=SecretStr("sandbox-secret"),
        refresh_token=SecretStr("sandbox-refresh"),
        state_dir=tmp_path / "state",
        policy_dir=policy_dir,
        rate_limit=1000,
        scan_start=scan_start,
        **changes,
    )


async def run_once(app: Any, settings: Settings) -> Ran:
    """`retention run --yes` in-process against the sandbox app."""
    ctx = RunContext(settings, transport=httpx.ASGITransport(app=app))
    result = await pipeline.run(ctx, trigger="manual", confirm=None, approved_by="test")
    return Ran(result, settings.state_dir)


def sandbox_app(account: Account) -> Any:
    return create_app(account)


def deleted_paths(app: Any) -> list[str]:
    return [e["path"] for e in app.state.log.since(0) if e["method"] == "DELETE"]


async def full_scan(app: Any, settings: Settings, *, later: timedelta = timedelta(0)) -> None:
    """`retention inventory --full` in-process: every window of every organizer read again,
    by a scan that starts `later` than now (the sandbox's history follows the real clock)."""
    ctx = RunContext(settings, transport=httpx.ASGITransport(app=app))
    db = open_state_db(settings.state_db)
    try:
        async with client(ctx) as made:
            now = datetime.now(UTC) + later
            report = await scan_as_set(made, db, settings, now=now, full=True)
        assert report.complete
    finally:
        db.close()
