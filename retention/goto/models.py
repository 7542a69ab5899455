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
# Keys are digit strings of any length: no sign, no other characters (see docs/client.md).
_KEY = re.compile(r"^\d{1,40}$")


def _to_int(value: object) -> object:
    """Accept ints and string-typed integers ("42"); leave anything else for pydantic to refuse."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")  # noqa: TRY004
    if isinstance(value, str):
        if not _DIGITS.match(value.strip()):
            raise ValueError(f"expected an integer, got {value!r}")
        return int(value.strip())
    return value


def _to_key(value: object) -> object:
    """A key: digits of any length, as a JSON string or number; never a sign, never a float."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected a key of digits, got {value!r}")  # noqa: TRY004
    text = str(value).strip()
    if not _KEY.match(text):
        raise ValueError(f"expected a key of digits, got {value!r}")
    return int(text)


# Counts and sizes beyond a 64-bit integer are no real meeting's: malformed, like a negative one.
_LARGEST = 2**63 - 1


def _to_count(value: object) -> object:
    """A count: an integer from 0 to 2^63-1 (string-typed allowed, as the API sends counts)."""
    number = _to_int(value)
    if isinstance(number, int) and not 0 <= number <= _LARGEST:
        raise ValueError(f"is out of range ({value!r}): a count is from 0 to 2^63-1")
    return number


def _to_size(value: object) -> object:
    """A byte size: a JSON integer from 0 to 2^63-1; a string or a float is not a size."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer size, got {value!r}")  # noqa: TRY004
    if not 0 <= value <= _LARGEST:
        raise ValueError(f"is out of range ({value!r}): a size is from 0 to 2^63-1")
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
ApiKey = Annotated[int, BeforeValidator(_to_key)]
ApiCount = Annotated[int, BeforeValidator(_to_count)]
ApiSize = Annotated[int, BeforeValidator(_to_size)]
# Minutes, signed: a negative duration is read, then found to contradict the times (sanity.py).
ApiDuration = Annotated[int, BeforeValidator(_to_int), Field(ge=-_LARGEST, le=_LARGEST)]
ApiTime = Annotated[datetime | None, BeforeValidator(_api_time)]


class ApiModel(BaseModel):
    """Base of the API's item models: aliases are the API's names; unknown fields are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)
    # Fields without which an item means nothing; a problem there drops the item.
    identity: ClassVar[frozenset[str]] = frozenset()
    # Nested objects read whole or not at all: what stands for one that cannot be read (an
    # object of unknowns, never the absence of the object).
    unreadable: ClassVar[dict[str, dict[str, None]]] = {}


class Organizer(ApiModel):
    """One organizer of the account (`GET /organizers`, `GET /groups/{key}/organizers`)."""

    identity: ClassVar[frozenset[str]] = frozenset({"organizerKey"})
    organizer_key: ApiKey = Field(alias="organizerKey")
    email: str | None = Field(alias="email", repr=False)
    first_name: str | None = Field(default=None, alias="firstName", repr=False)
    last_name: str | None = Field(default=None, alias="lastName", repr=False)
    group_key: ApiKey | None = Field(default=None, alias="groupId")
    group_name: str | None = Field(default=None, alias="groupName")
    status: str | None = Field(default=None, alias="status")


class Group(ApiModel):
    """One group of organizers (`GET /groups`)."""

    identity: ClassVar[frozenset[str]] = frozenset({"groupkey"})
    group_key: ApiKey = Field(alias="groupkey")
    group_name: str | None = Field(alias="groupName")
    parent_key: ApiKey | None = Field(default=None, alias="parentKey")
    status: str | None = Field(default=None, alias="status")
    num_organizers: ApiCount | None = Field(alias="numOrganizers")


class Recording(ApiModel):
    """The recording of a session, as history calls describe it.

    Known only as a whole: an object with an id and an integer size. Anything less (a string,
    a list, an object missing either, a size that is not an integer) is a recording whose
    facts are unknown (`known` false), never "no recording".
    """

    recording_id: str | None = Field(alias="recordingId", min_length=1)
    recording_name: str | None = Field(default=None, alias="recordingName")
    file_size: ApiSize | None = Field(alias="fileSize")
    download_url: str | None = Field(default=None, alias="downloadUrl", repr=False)
    share_url: str | None = Field(default=None, alias="shareUrl", repr=False)
    transcript_url: str | None = Field(default=None, alias="transcriptUrl", repr=False)
    ai_summary_url: str | None = Field(default=None, alias="aiSummaryUrl", repr=False)

    @property
    def has_transcript(self) -> bool:
        """Whether a transcript comes with the recording."""
        return bool(self.transcript_url)

    @property
    def known(self) -> bool:
        """Whether the recording's facts (id and size) were read."""
        return self.recording_id is not None and self.file_size is not None


class HistoricalSession(ApiModel):
    """One session from organizer or meeting-id history: the unit of deletion."""

    identity: ClassVar[frozenset[str]] = frozenset({"sessionId", "meetingId", "organizerKey"})
    unreadable: ClassVar[dict[str, dict[str, None]]] = {
        "recording": {"recordingId": None, "fileSize": None}
    }
    session_id: ApiKey = Field(alias="sessionId")
    meeting_id: ApiKey = Field(alias="meetingId")
    organizer_key: ApiKey = Field(alias="organizerKey")
    email: str | None = Field(alias="email", repr=False)
    subject: str | None = Field(alias="subject", repr=False)
    meeting_type: str | None = Field(default=None, alias="meetingType")
    start_time: ApiTime = Field(alias="startTime")
    end_time: ApiTime = Field(alias="endTime")
    duration: ApiDuration | None = Field(alias="duration")
    num_attendees: ApiCount | None = Field(alias="numAttendees")
    recording: Recording | None = Field(default=None, alias="recording")

    @property
    def recording_known(self) -> bool:
        """Whether the recording facts are known: none listed, or one read whole."""
        return self.recording is None or self.recording.known


class GroupMeeting(ApiModel):
    """One meeting from group history: who met when (group history carries no session id)."""

    identity: ClassVar[frozenset[str]] = frozenset({"organizerKey"})
    organizer_key: ApiKey = Field(alias="organizerKey")
    meeting_id: ApiKey | None = Field(alias="meetingId")
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
        _set_unknown(model, patched, path)
    try:
        return model.model_validate(patched), problems
    except ValidationError:
        # A nested object that cannot be rebuilt even with unknowns is itself unknown.
        for path in bad_paths:
            patched[path[0]] = _unknown_value(model, path[0])
        return model.model_validate(patched), problems


def _unknown_value(model: type[ApiModel], name: str) -> dict[str, None] | None:
    placeholder = model.unreadable.get(name)
    return None if placeholder is None else dict(placeholder)


def _set_unknown(model: type[ApiModel], data: dict[str, Any], path: tuple[str, ...]) -> None:
    if len(path) == 1:
        data[path[0]] = _unknown_value(model, path[0])
        return
    target: Any = data
    for part in path[:-1]:
        if not isinstance(target, dict) or not isinstance(target.get(part), dict):
            data[path[0]] = _unknown_value(model, path[0])
            return
        target = target[part]
    target[path[-1]] = None
