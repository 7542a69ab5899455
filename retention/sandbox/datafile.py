"""The account's JSON file: load it with every problem named by entry, and write it back."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retention.sandbox.account import (
    Account,
    Attendee,
    Group,
    Meeting,
    OAuthClient,
    Organizer,
    Recording,
    Session,
)
from retention.sandbox.times import iso_z, parse_iso

MEETING_TYPES = ("immediate", "recurring", "scheduled")
STATUSES = ("active", "suspended", "inactive")
_MAX_LISTED = 20


class SandboxDataError(ValueError):
    """The data file cannot be served; `problems` lists each one with its entry."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        shown = problems[:_MAX_LISTED]
        more = len(problems) - len(shown)
        lines = "\n".join(f"  {path}: {problem}" for problem in shown)
        tail = f"\n  … and {more} more" if more else ""
        super().__init__(f"{path}: {len(problems)} problem(s) in the account data\n{lines}{tail}")
        self.path = path
        self.problems = problems


class _Reader:
    """Reads typed fields of one entry, recording a problem instead of raising."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def get(self, entry: Any, where: str, name: str, kind: type, *, default: Any = ...) -> Any:
        if not isinstance(entry, dict):
            self.problems.append(f"{where}: expected an object")
            return None
        if name not in entry:
            if default is ...:
                self.problems.append(f"{where}: missing {name!r}")
            return None if default is ... else default
        value = entry[name]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.problems.append(f"{where}: {name!r} must be {kind.__name__}, got {value!r}")
            return None
        return value

    def time(self, entry: dict[str, Any], where: str, name: str, *, empty_ok: bool) -> int | None:
        text = self.get(entry, where, name, str)
        if text is None or (text == "" and empty_ok):
            return None
        try:
            return parse_iso(text)
        except ValueError as exc:
            self.problems.append(f"{where}: {name}: {exc}")
            return None


def load_account(path: Path) -> Account:
    """Read and validate an account file; raises SandboxDataError naming every bad entry."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SandboxDataError(path, [f"cannot read the file: {exc.strerror}"]) from exc
    except json.JSONDecodeError as exc:
        raise SandboxDataError(path, [f"line {exc.lineno}: not JSON: {exc.msg}"]) from exc
    problems: list[str] = []
    read = _Reader(problems)
    if not isinstance(raw, dict):
        raise SandboxDataError(path, ["the top level must be a JSON object"])
    account_key = read.get(raw, "top level", "accountKey", str)
    now = None
    if "now" in raw:
        now = read.time(raw, "top level", "now", empty_ok=False)
    oauth = _oauth(read, raw.get("oauth", {}))
    groups = _table(read, raw, "groups", "groupKey", _group)
    organizers = _table(read, raw, "organizers", "organizerKey", _organizer)
    meetings = _table(read, raw, "meetings", "meetingId", _meeting)
    sessions = _table(read, raw, "sessions", "sessionId", _session)
    seed = read.get(raw, "top level", "attendeeSeed", int, default=0)
    _check_references(problems, groups, organizers, meetings, sessions)
    if not organizers and not problems:
        problems.append("organizers: the account needs at least one organizer (the admin)")
    if problems:
        raise SandboxDataError(path, problems)
    for session in sessions.values():
        session.organizer_key = meetings[session.meeting_id].organizer_key
    return Account(account_key, groups, organizers, meetings, sessions, now, oauth, seed)


def _oauth(read: _Reader, raw: Any) -> OAuthClient:
    defaults = OAuthClient()
    return OAuthClient(
        read.get(raw, "oauth", "client_id", str, default=defaults.client_id),
        read.get(raw, "oauth", "client_secret", str, default=defaults.client_secret),
        read.get(raw, "oauth", "refresh_token", str, default=defaults.refresh_token),
    )


def _table(
    read: _Reader, raw: dict[str, Any], name: str, key: str, build: Callable[..., Any]
) -> dict[int, Any]:
    entries = read.get(raw, "top level", name, list, default=[])
    table: dict[int, Any] = {}
    for index, entry in enumerate(entries or []):
        where = f"{name}[{index}]"
        ident = read.get(entry, where, key, int)
        if ident is None:
            continue
        where = f"{where} ({key} {ident})"
        if ident in table:
            read.problems.append(f"{where}: duplicate {key}")
            continue
        before = len(read.problems)
        built = build(read, entry, where, ident)
        if len(read.problems) == before:
            table[ident] = built
    return table


def _choice(read: _Reader, value: Any, where: str, name: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        read.problems.append(f"{where}: {name!r} must be one of {', '.join(allowed)}")


def _group(read: _Reader, entry: dict[str, Any], where: str, key: int) -> Group:
    status = read.get(entry, where, "status", str, default="active")
    _choice(read, status, where, "status", STATUSES)
    name = read.get(entry, where, "groupName", str)
    return Group(key, name, read.get(entry, where, "parentKey", int, default=key), status)


def _organizer(read: _Reader, entry: dict[str, Any], where: str, key: int) -> Organizer:
    status = read.get(entry, where, "status", str, default="active")
    _choice(read, status, where, "status", STATUSES)
    products = read.get(entry, where, "products", list, default=["G2M"])
    return Organizer(
        key,
        read.get(entry, where, "email", str),
        read.get(entry, where, "firstName", str),
        read.get(entry, where, "lastName", str),
        read.get(entry, where, "groupKey", int),
        status,
        tuple(str(product) for product in products or ()),
        read.get(entry, where, "maxNumAttendeesAllowed", int, default=250),
        read.get(entry, where, "locale", str, default="en_US"),
    )


def _meeting(read: _Reader, entry: dict[str, Any], where: str, key: int) -> Meeting:
    meeting_type = read.get(entry, where, "meetingType", str)
    _choice(read, meeting_type, where, "meetingType", MEETING_TYPES)
    return Meeting(
        key,
        read.get(entry, where, "organizerKey", int),
        read.get(entry, where, "subject", str),
        meeting_type,
        read.get(entry, where, "conferenceCallInfo", str, default="VoIP"),
        read.get(entry, where, "passwordRequired", bool, default=False),
    )


def _session(read: _Reader, entry: dict[str, Any], where: str, key: int) -> Session:
    start = read.time(entry, where, "startTime", empty_ok=False)
    end = read.time(entry, where, "endTime", empty_ok=True)
    if start is not None and end is not None and end < start:
        read.problems.append(f"{where}: endTime is before startTime")
    attendees = None
    count = read.get(entry, where, "attendeeCount", int, default=0) or 0
    if "attendees" in entry:
        listing = read.get(entry, where, "attendees", list) or []
        attendees = tuple(
            _attendee(read, item, f"{where} attendees[{index}]")
            for index, item in enumerate(listing)
        )
        count = len(attendees)
    recording = None
    if "recording" in entry:
        recording = _recording(read, entry["recording"], f"{where} recording")
    meeting_id = read.get(entry, where, "meetingId", int)
    raw = read.get(entry, where, "_raw", dict, default=None)
    omitted = read.get(entry, where, "_omit", list, default=[]) or []
    if not all(isinstance(name, str) for name in omitted):
        read.problems.append(f"{where}: '_omit' must list field names")
    session = Session(key, meeting_id, 0, start or 0, end, count, attendees, recording)
    session.raw = raw
    session.omitted = tuple(str(name) for name in omitted)
    return session


def _attendee(read: _Reader, item: dict[str, Any], where: str) -> Attendee:
    return Attendee(
        read.get(item, where, "name", str),
        read.get(item, where, "email", str),
        read.time(item, where, "joinTime", empty_ok=True),
        read.time(item, where, "leaveTime", empty_ok=True),
    )


def _recording(read: _Reader, raw: Any, where: str) -> Recording:
    return Recording(
        read.get(raw, where, "recordingId", str),
        read.get(raw, where, "recordingName", str),
        read.get(raw, where, "fileSize", int),
        read.get(raw, where, "transcript", bool, default=False),
        read.get(raw, where, "aiSummary", bool, default=False),
    )


def _check_references(
    problems: list[str],
    groups: dict[int, Group],
    organizers: dict[int, Organizer],
    meetings: dict[int, Meeting],
    sessions: dict[int, Session],
) -> None:
    for key, organizer in organizers.items():
        if organizer.group_key not in groups:
            problems.append(f"organizer {key}: groupKey {organizer.group_key} is not a group")
    for key, meeting in meetings.items():
        if meeting.organizer_key not in organizers:
            problems.append(f"meeting {key}: organizerKey {meeting.organizer_key} is unknown")
    for key, session in sessions.items():
        if session.meeting_id not in meetings:
            problems.append(f"session {key}: meetingId {session.meeting_id} is not a meeting")


# Each table's names in the file, in its dataclass's field order: written, an entry holds
# the fields under these names (`_Reader` reads them back one by one, with their checks).
_FILE_NAMES: dict[type, tuple[str, ...]] = {
    Group: ("groupKey", "groupName", "parentKey", "status"),
    Organizer: (
        "organizerKey",
        "email",
        "firstName",
        "lastName",
        "groupKey",
        "status",
        "products",
        "maxNumAttendeesAllowed",
        "locale",
    ),
    Meeting: (
        "meetingId",
        "organizerKey",
        "subject",
        "meetingType",
        "conferenceCallInfo",
        "passwordRequired",
    ),
    Recording: ("recordingId", "recordingName", "fileSize", "transcript", "aiSummary"),
}


def dump_account(account: Account, path: Path) -> None:
    """Write the account in the format `load_account` reads (atomically, via a rename)."""
    document = {
        "accountKey": account.account_key,
        **({"now": iso_z(account.now)} if account.now is not None else {}),
        "oauth": dataclasses.asdict(account.oauth),
        "attendeeSeed": account.attendee_seed,
        "groups": [_entry(group) for group in account.groups.values()],
        "organizers": [_entry(org) for org in account.organizers.values()],
        "meetings": [_entry(meeting) for meeting in account.meetings.values()],
        "sessions": [_session_json(session) for session in account.iter_sessions()],
    }
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        json.dump(document, handle, ensure_ascii=False, separators=(",", ":"))
    os.replace(partial, path)


def _entry(item: Group | Organizer | Meeting | Recording) -> dict[str, Any]:
    values = [getattr(item, field.name) for field in dataclasses.fields(item)]
    return dict(zip(_FILE_NAMES[type(item)], values, strict=True))


def _optional_time(epoch: int | None) -> str:
    return "" if epoch is None else iso_z(epoch)


def _session_json(session: Session) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "sessionId": session.session_id,
        "meetingId": session.meeting_id,
        "startTime": iso_z(session.start),
        "endTime": _optional_time(session.end),
    }
    if session.attendees is None:
        entry["attendeeCount"] = session.attendee_count
    else:
        entry["attendees"] = [
            {
                "name": attendee.name,
                "email": attendee.email,
                "joinTime": _optional_time(attendee.join_time),
                "leaveTime": _optional_time(attendee.leave_time),
            }
            for attendee in session.attendees
        ]
    if session.recording is not None:
        entry["recording"] = _entry(session.recording)
    if session.raw is not None:
        entry["_raw"] = session.raw
    if session.omitted:
        entry["_omit"] = list(session.omitted)
    return entry
