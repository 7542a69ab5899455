"""Every route to a removal, driven in-process on the sandbox, and a reference model of the rules.

A `World` is a generated account served over the ASGI transport, a state directory and a policy
folder. A `Scenario` says what the folder holds before and after a change, and what changes in
the account (an organizer moved, an email changed). Each route runs through its real entry
point (`pipeline.run`, `pipeline.apply`, the plan preview, the daemon's scheduled job in both
modes, reconciliation at start-up, `retention explain` and `retention test` through the CLI).
`reference` decides the same facts independently of the product's code, from the account as it
is when the route runs: what the policies call for, and why not when they do not.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner
from pydantic import SecretStr

from retention.cli import cli
from retention.engine.state import open_state_db
from retention.sandbox import Account, SandboxOptions, create_app, generate_account
from retention.sandbox.app import move_organizer
from retention.settings import Settings

ACCOUNT_NOW = datetime(2026, 11, 23, tzinfo=UTC)
RULE = "recordings"
_DELETE = re.compile(r"/organizers/(\d+)/sessions/(\d+)(/recordings|/attendees)?$")


@dataclass(frozen=True)
class Hold:
    """A hold on a group (by name), an organizer (by email), or everything."""

    id: str
    group: str | None = None
    email: str | None = None

    def yaml(self) -> str:
        head = f"  - id: {self.id}\n    reason: kept for the matter\n"
        if self.group is not None:
            return head + f"    scope:\n      groups: [{json.dumps(self.group)}]\n"
        if self.email is not None:
            return head + f"    scope:\n      organizers: [{json.dumps(self.email)}]\n"
        return head + "    all: true\n"

    def covers(self, group: str, email: str) -> bool:
        if self.group is not None:
            return self.group == group
        if self.email is not None:
            return self.email.casefold() == email.casefold()
        return True


@dataclass(frozen=True)
class Folder:
    """The policy folder: one recordings rule, retain rules by group, holds."""

    period_days: int = 1
    holds: tuple[Hold, ...] = ()
    retain: tuple[tuple[str, int], ...] = ()  # (group name, days)
    cap: int | None = None
    notice: bool = False
    scope: tuple[str, ...] = ()  # group names; empty: every organizer
    broken: bool = False

    @property
    def rule_name(self) -> str:
        return f"{RULE}-{self.period_days}d"

    def text(self) -> str:
        lines = [
            "policies:",
            f"  - name: {self.rule_name}",
            "    description: Recordings go after their period.",
            "    action: delete_recordings",
            f"    after: {self.period_days}d",
            "    match: {has_recording: true}",
        ]
        if self.scope:
            lines.append(f"    scope: {{groups: {json.dumps(list(self.scope))}}}")
        if self.cap is not None:
            lines.append(f"    limits: {{max_deletions: {self.cap}}}")
        if self.notice:
            lines.append("    notice: required")
        for group, days in self.retain:
            lines += [
                f"  - name: keep-{days}d",
                "    description: Kept for its period.",
                "    action: retain",
                f"    after: {days}d",
                f"    scope: {{groups: [{json.dumps(group)}]}}",
            ]
        text = "\n".join(lines) + "\n"
        if self.holds:
            text += "holds:\n" + "".join(hold.yaml() for hold in self.holds)
        if self.broken:
            text += "  - id: BROKEN\n    reasn: a typo\n"
        return text


@dataclass(frozen=True)
class Change:
    """What happens in the account between the first run and the route."""

    move_to: str | None = None  # the chosen organizer moves into this group (a name)
    email: str | None = None  # the chosen organizer's new email


@dataclass(frozen=True)
class Scenario:
    name: str
    before: Folder
    after: Folder
    change: Change = Change()
    noticed_days_ago: int | None = None  # owner notices recorded sent that long ago
    stale_daemon: bool = False  # the daemon loaded `before` and was not told of the edit


@dataclass
class World:
    """An account served in-process, a state directory and a policy folder."""

    account: Account
    root: Path
    spy: DeleteSpy
    organizer: int  # the organizer scenarios move or rename
    groups: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, root: Path, seed: int = 3) -> World:
        account = generate_account(
            seed=seed, organizers=5, groups=2, days=12, sessions_per_day=4, now=ACCOUNT_NOW
        )
        app = create_app(account, SandboxOptions())
        spy = DeleteSpy(httpx.ASGITransport(app=app))
        with_recordings = sorted(
            {s.organizer_key for s in account.iter_sessions() if s.recording is not None}
        )
        groups = {group.name: key for key, group in account.groups.items()}
        return cls(account, root, spy, with_recordings[0], groups)

    @property
    def policy_dir(self) -> Path:
        return self.root / "policies"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    def settings(self, **changes: Any) -> Settings:
        values: dict[str, Any] = {
            "api_base_url": "http://127.0.0.1/G2M/rest",
            "token_url": "http://127.0.0.1/oauth/token",
            "client_id": "sandbox-client",
            "client_secret": SecretStr("sandbox-secret"),
            "refresh_token": SecretStr("sandbox-refresh"),
            "state_dir": self.state_dir,
            "policy_dir": self.policy_dir,
            "rate_limit": 1000,
            "scan_start": "2026-11-01",
            "owner_notice_days": 7,
            **changes,
        }
        return Settings(**values)

    def env(self, **changes: str) -> dict[str, str]:
        """The same settings as environment variables, for the CLI."""
        return {
            "RETENTION_API_BASE_URL": "http://127.0.0.1/G2M/rest",
            "RETENTION_STATE_DIR": str(self.state_dir),
            "RETENTION_POLICY_DIR": str(self.policy_dir),
            "RETENTION_OWNER_NOTICE_DAYS": "7",
            "RETENTION_SCAN_START": "2026-11-01",
            **changes,
        }

    def write(self, folder: Folder) -> None:
        self.policy_dir.mkdir(exist_ok=True)
        (self.policy_dir / "policies.yaml").write_text(folder.text())

    def group_of(self, organizer_key: int) -> str:
        return self.account.groups[self.account.organizers[organizer_key].group_key].name

    def other_group(self) -> str:
        own = self.group_of(self.organizer)
        return next(name for name in sorted(self.groups) if name != own)

    def apply_change(self, change: Change) -> None:
        if change.move_to is not None:
            moved = {"organizerKey": self.organizer, "groupKey": self.groups[change.move_to]}
            assert move_organizer(self.account, moved) is None
        if change.email is not None:
            organizers = self.account.organizers
            organizers[self.organizer] = _replace_email(organizers[self.organizer], change.email)
            self.account.reindex()

    def listed(self) -> list[Any]:
        """The sessions the API lists: those ended by the account's now (others are on)."""
        ended = ACCOUNT_NOW.timestamp()
        return [s for s in self.account.iter_sessions() if s.end is not None and s.end <= ended]

    def removed(self) -> set[int]:
        """The sessions whose recording a DELETE reached the sandbox for."""
        return {session for session, action in self.spy.deleted if action == "delete_recordings"}


def _replace_email(organizer: Any, email: str) -> Any:
    return dataclasses.replace(organizer, email=email)


class DeleteSpy(httpx.AsyncBaseTransport):
    """The transport, keeping each DELETE that reached the sandbox: (session id, action), and
    every request sent: (method, path)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.deleted: list[tuple[int, str]] = []
        self.requests: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.method == "DELETE":
            found = _DELETE.search(request.url.path)
            assert found is not None, request.url.path
            action = {"/recordings": "delete_recordings", "/attendees": "delete_attendees"}
            self.deleted.append((int(found[2]), action.get(found[3] or "", "delete_session")))
        return await self.inner.handle_async_request(request)


@dataclass(frozen=True)
class Expected:
    """The reference's verdict on each session's recording, and whether a rule calls for it."""

    verdicts: Mapping[int, str]
    called: frozenset[int]

    @property
    def due(self) -> set[int]:
        return {sid for sid, verdict in self.verdicts.items() if verdict == "due"}

    @property
    def blocked(self) -> set[int]:
        return {sid for sid in self.called if self.verdicts[sid] != "due"}


def reference(
    world: World,
    scenario: Scenario,
    kept: Mapping[str, frozenset[int]],
    now: datetime,
) -> Expected:
    """The rules decided on the account as it is now, written apart from the product's code.

    Order of the reasons, as `retention explain` gives them: held, no rule, retained, not yet
    (age, then notice), refused (a name never seen, a cap), due.
    """
    folder = scenario.after
    never_seen = [name for name in folder.scope if name not in world.groups]
    verdicts: dict[int, str] = {}
    called: set[int] = set()
    for session in world.listed():
        organizer = world.account.organizers[session.organizer_key]
        group = world.group_of(session.organizer_key)
        end = None if session.end is None else datetime.fromtimestamp(session.end, UTC)
        held = any(
            hold.covers(group, organizer.email) or session.session_id in kept.get(hold.id, ())
            for hold in folder.holds
        )
        in_scope = not folder.scope or group in folder.scope
        old_enough = end is not None and end <= now - timedelta(days=folder.period_days)
        retained = any(
            name == group and end is not None and end > now - timedelta(days=days)
            for name, days in folder.retain
        )
        if in_scope and session.recording is not None and old_enough:
            called.add(session.session_id)
        if held:
            verdict = "held"
        elif not in_scope or session.recording is None:
            verdict = "no_rule"  # the rule matches only sessions with a recording
        elif retained:
            verdict = "retained"
        elif (
            not old_enough
            or (folder.notice and scenario.noticed_days_ago is None)
            or (folder.notice and scenario.noticed_days_ago < 7)
        ):
            verdict = "not_yet"
        elif never_seen:
            verdict = "refused"
        else:
            verdict = "due"
        verdicts[session.session_id] = verdict
    due = [sid for sid, verdict in verdicts.items() if verdict == "due"]
    if folder.cap is not None and len(due) > folder.cap:
        verdicts.update(dict.fromkeys(due, "refused"))
    return Expected(verdicts, frozenset(called))


def kept_by_baseline(world: World, scenario: Scenario) -> dict[str, frozenset[int]]:
    """What each hold of the first folder covered in the first run (it keeps it)."""
    kept: dict[str, frozenset[int]] = {}
    for hold in scenario.before.holds:
        kept[hold.id] = frozenset(
            s.session_id
            for s in world.listed()
            if hold.covers(
                world.group_of(s.organizer_key), world.account.organizers[s.organizer_key].email
            )
        )
    return kept


def record_notices(world: World, days_ago: int) -> None:
    """Owner notices recorded sent `days_ago` for every recording (as a mail server took them)."""
    db = open_state_db(world.state_dir / "state.db")
    sent = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    rows = [
        [s.session_id, "delete_recordings", s.organizer_key, "p", sent, sent, "r"]
        for s in world.listed()
        if s.recording is not None
    ]
    with db.atomic():
        for row in rows:
            db.execute(
                "INSERT OR REPLACE INTO notices_sent (session_id, action, organizer_key, policy,"
                " due_at, sent_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
    db.close()


def invoke(world: World, *args: str, **env: str) -> Any:
    """`retention ARGS` in-process through click's runner, with the world's settings."""
    runner = CliRunner()
    secrets = {
        "RETENTION_CLIENT_ID": "sandbox-client",
        "RETENTION_CLIENT_SECRET": "sandbox-secret",
        "RETENTION_REFRESH_TOKEN": "sandbox-refresh",
    }
    return runner.invoke(
        cli, list(args), env={**secrets, **world.env(**env)}, catch_exceptions=False
    )


def cases_yaml(world: World, scenario: Scenario, expected: Expected, as_of: datetime) -> str:
    """Policy tests expecting the reference's verdicts, one per session, with the run's context."""
    folder = scenario.after
    context: dict[str, Any] = {}
    due = expected.due | {s for s, v in expected.verdicts.items() if v == "refused"}
    if folder.cap is not None and len(due) > folder.cap:
        context["refused"] = [{"policy": folder.rule_name, "by": f"cap:{folder.rule_name}"}]
    if scenario.noticed_days_ago is not None:
        context["noticed"] = (as_of - timedelta(days=scenario.noticed_days_ago)).isoformat()
    if folder.scope:
        context["known"] = {"groups": sorted(world.groups)}
    tests = []
    for session in world.listed():
        organizer = world.account.organizers[session.organizer_key]
        case: dict[str, Any] = {
            "name": f"session {session.session_id}",
            "as_of": as_of.isoformat(),
            "session": {
                "session_id": session.session_id,
                "organizer": organizer.email,
                "group": world.group_of(session.organizer_key),
                "start": datetime.fromtimestamp(session.start, UTC).isoformat(),
                "end": None
                if session.end is None
                else datetime.fromtimestamp(session.end, UTC).isoformat(),
                "recording_bytes": session.recording.file_size if session.recording else 0,
                "attendees": session.attendee_count,
            },
            "expect": {"delete_recordings": expected.verdicts[session.session_id]},
        }
        if context:
            case["context"] = context
        tests.append(case)
    return json.dumps({"tests": tests}, indent=1)  # JSON is YAML
