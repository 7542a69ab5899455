"""Typed views of the API's JSON, parsed leniently: every problem is named, never defaulted away.

Each model parses one item of a JSON array. `parse_items` keeps what it can: a field that is
missing or malformed becomes None (unknown) and yields a problem naming the endpoint and the
field; an item whose identity (its keys) cannot be read is dropped from the result but its
problem is still reported, so that nothing disappears silently.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from retention.times import parse_api_time

_DIGITS = re.compile(r"^-?\d+$")


def _to_int(value: object) -> object:
    """Accept ints and string-typed integers ("42"); leave anything else for pydantic to refuse."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")  # noqa: TRY004
    if isinstance(value, str):
        if not _DIGITS.match(value.strip()):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value.strip())
    return value


# No GoTo Meeting session predates this: earlier times are sentinels (1970-01-01, 0001-01-01).
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def _api_time(value: object) -> datetime | None:
    """An API time, refusing sentinels: a time before 2000-01-01 is no real meeting's."""
    moment = parse_api_time(value)
    if moment is not None and moment < EARLIEST_TIME:
        raise ValueError(f"{value!r} is before 2000-01-01: a placeholder, not a real time")
    return moment


ApiInt = Annotated[int, BeforeValidator(_to_int)]
ApiTime = Annotated[datetime | None, BeforeValidator(_api_time)]


class ApiModel(BaseModel):
    """Base of the API's item models: aliases are the API's names; unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    # Fields without which an item means nothing; a problem there drops the item.
    identity: ClassVar[frozenset[str]] = frozenset()


class Organizer(ApiModel):
    """One organizer of the account (`GET /organizers`, `GET /groups/{key}/organizers`)."""

    identity: ClassVar[frozenset[str]] = frozenset({"organizerKey"})
    organizer_key: ApiInt = Field(alias="organizerKey")
    email: str | None = Field(alias="email", repr=False)
    first_name: str | None = Field(default=None, alias="firstName", repr=False)
    last_name: str | None = Field(default=None, alias="lastName", repr=False)
    group_key: ApiInt | None = Field(default=None, alias="groupId")
    group_name: str | None = Field(default=None, alias="groupName")
    status: str | None = Field(default=None, alias="status")


class Group(ApiModel):
    """One group of organizers (`GET /groups`)."""

    identity: ClassVar[frozenset[str]] = frozenset({"groupkey"})
    group_key: ApiInt = Field(alias="groupkey")
    group_name: str | None = Field(alias="groupName")
    parent_key: ApiInt | None = Field(default=None, alias="parentKey")
    status: str | None = Field(default=None, alias="status")
    num_organizers: ApiInt | None = Field(alias="numOrganizers")


class Recording(ApiModel):
    """The recording of a session, as history calls describe it."""

    recording_id: str | None = Field(alias="recordingId")
    recording_name: str | None = Field(default=None, alias="recordingName")
    file_size: ApiInt | None = Field(alias="fileSize")
    download_url: str | None = Field(default=None, alias="downloadUrl", repr=False)
    share_url: str | None = Field(default=None, alias="shareUrl", repr=False)
    transcript_url: str | None = Field(default=None, alias="transcriptUrl", repr=False)
    ai_summary_url: str | None = Field(default=None, alias="aiSummaryUrl", repr=False)

    @property
    def has_transcript(self) -> bool:
        """Whether a transcript comes with the recording."""
        return bool(self.transcript_url)


class HistoricalSession(ApiModel):
    """One session from organizer or meeting-id history: the unit of deletion."""

    identity: ClassVar[frozenset[str]] = frozenset({"sessionId", "meetingId", "organizerKey"})
    session_id: ApiInt = Field(alias="sessionId")
    meeting_id: ApiInt = Field(alias="meetingId")
    organizer_key: ApiInt = Field(alias="organizerKey")
    email: str | None = Field(alias="email", repr=False)
    subject: str | None = Field(alias="subject", repr=False)
    meeting_type: str | None = Field(default=None, alias="meetingType")
    start_time: ApiTime = Field(alias="startTime")
    end_time: ApiTime = Field(alias="endTime")
    duration: ApiInt | None = Field(alias="duration")
    num_attendees: ApiInt | None = Field(alias="numAttendees")
    recording: Recording | None = Field(default=None, alias="recording")


class GroupMeeting(ApiModel):
    """One meeting from group history: who met when (group history carries no session id)."""

    identity: ClassVar[frozenset[str]] = frozenset({"organizerKey"})
    organizer_key: ApiInt = Field(alias="organizerKey")
    meeting_id: ApiInt | None = Field(alias="meetingId")
    start_time: ApiTime = Field(alias="startTime")
    end_time: ApiTime = Field(default=None, alias="endTime")
    group_name: str | None = Field(default=None, alias="groupName")


M = TypeVar("M", bound=ApiModel)


@dataclass(frozen=True)
class Parsed(Generic[M]):
    """Items parsed from one response, and every problem met on the way."""

    items: list[M]
    problems: list[ItemProblem] = field(default_factory=list)


@dataclass(frozen=True)
class ItemProblem:
    """A field of one item that was missing or malformed; `dropped` when the item was unusable."""

    endpoint: str
    index: int
    name: str
    problem: str
    dropped: bool
    keys: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for reports and logs."""
        where = f"{self.endpoint} item {self.index}"
        outcome = "item skipped" if self.dropped else "stored as unknown"
        return f"{where}: field {self.name!r} {self.problem} ({outcome})"


def parse_items(model: type[M], payload: Sequence[Any], endpoint: str) -> Parsed[M]:
    """Parse each item of a JSON array, keeping what can be kept (see the module docstring)."""
    items: list[M] = []
    problems: list[ItemProblem] = []
    for index, raw in enumerate(payload):
        if not isinstance(raw, dict):
            problems.append(ItemProblem(endpoint, index, "(item)", "is not an object", True))
            continue
        item, found = _parse_one(model, raw, endpoint, index)
        problems.extend(found)
        if item is not None:
            items.append(item)
    return Parsed(items, problems)


def _parse_one(
    model: type[M], raw: dict[str, Any], endpoint: str, index: int
) -> tuple[M | None, list[ItemProblem]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        errors = exc.errors()
    bad_paths = [tuple(str(part) for part in error["loc"]) for error in errors]
    dropped = any(path[0] in model.identity for path in bad_paths)
    keys = {name: raw.get(name) for name in model.identity if name not in {p[0] for p in bad_paths}}
    problems = [
        ItemProblem(
            endpoint,
            index,
            ".".join(path),
            "is missing" if error["type"] == "missing" else f"is malformed: {error['msg']}",
            dropped,
            keys,
        )
        for path, error in zip(bad_paths, errors, strict=True)
    ]
    if dropped:
        return None, problems
    patched = copy.deepcopy(raw)
    for path in bad_paths:
        _set_unknown(patched, path)
    try:
        return model.model_validate(patched), problems
    except ValidationError:
        # A nested object that cannot be rebuilt even with unknowns is itself unknown.
        for path in bad_paths:
            patched[path[0]] = None
        return model.model_validate(patched), problems


def _set_unknown(data: dict[str, Any], path: tuple[str, ...]) -> None:
    target: Any = data
    for part in path[:-1]:
        if not isinstance(target, dict) or not isinstance(target.get(part), dict):
            data[path[0]] = None
            return
        target = target[part]
    target[path[-1]] = None
