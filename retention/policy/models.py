"""The policy and hold language as pydantic models: strict types, unknown keys refused."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    WithJsonSchema,
)

from retention.policy.durations import DURATION_PATTERN, Duration, parse_duration
from retention.policy.patterns import compile_pattern
from retention.policy.schedules import schedule_trigger
from retention.times import parse_date

Action = Literal["delete_recordings", "delete_attendees", "delete_session", "retain"]
DeleteAction = Literal["delete_recordings", "delete_attendees", "delete_session"]
MeetingType = Literal["scheduled", "recurring", "immediate"]


def _duration(value: object) -> Duration:
    if isinstance(value, Duration):
        return value
    if not isinstance(value, str):
        # pydantic reports ValueError (not TypeError) as a validation error with our message
        raise ValueError(f"{value!r} has no unit: write e.g. 90d, 12w, 6m or 7y")  # noqa: TRY004
    return parse_duration(value)


def _regex(value: str) -> str:
    compile_pattern(value)  # ValueError with RE2's reason when it cannot compile
    return value


def _schedule(value: str) -> str:
    schedule_trigger(value)  # ScheduleError (a ValueError) naming what is wrong
    return value


def _reference(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError(f"{value!r} is neither a name nor a key (a whole number)")


def _email_or_key(value: object) -> int | str:
    reference = _reference(value)
    if isinstance(reference, str) and "@" not in reference:
        raise ValueError(f"{reference!r} is neither an email address nor an organizer key")
    return reference


def _calendar_date(value: object) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return parse_date(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date: write YYYY-MM-DD")


DurationText = Annotated[
    Duration,
    PlainValidator(_duration),
    PlainSerializer(lambda duration: duration.iso, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "description": "Nd days, Nw weeks, Nm calendar months, Ny calendar years, or ISO 8601",
            "examples": ["90d", "12w", "6m", "7y", "P1Y6M"],
        }
    ),
]
Regex = Annotated[str, Field(min_length=1), AfterValidator(_regex)]
Crontab = Annotated[str, AfterValidator(_schedule)]
_REF_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "minLength": 1}]}
GroupRef = Annotated[int | str, PlainValidator(_reference), WithJsonSchema(_REF_SCHEMA)]
OrganizerRef = Annotated[int | str, PlainValidator(_email_or_key), WithJsonSchema(_REF_SCHEMA)]
CalendarDate = Annotated[
    date,
    PlainValidator(_calendar_date),
    PlainSerializer(lambda day: day.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2025-06-30"]}),
]
Key = Annotated[int, Field(ge=0)]


class StrictModel(BaseModel):
    """Strict types, unknown keys refused, frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Scope(StrictModel):
    """Whose sessions: `groups` plus `organizers`, less `exclude_organizers`, `exclude_groups`."""

    groups: list[GroupRef] | None = Field(
        None, min_length=1, description="Group names or group keys", examples=[["Sales", 4411]]
    )
    organizers: list[OrganizerRef] | None = Field(
        None, min_length=1, description="Organizer emails or keys", examples=[["ana@example.com"]]
    )
    exclude_organizers: list[OrganizerRef] | None = Field(
        None, min_length=1, description="Organizer emails or keys never covered"
    )
    exclude_groups: list[GroupRef] | None = Field(
        None,
        min_length=1,
        description="Group names or group keys whose organizers are never covered",
        examples=[["Legal"]],
    )


class Match(StrictModel):
    """Conditions on the session; every condition given must hold."""

    meeting_types: list[MeetingType] | None = Field(None, min_length=1)
    subject: Regex | None = Field(
        None,
        description="Regular expression (RE2 syntax) searched in the subject",
        examples=["(?i)interview"],
    )
    subject_not: Regex | None = Field(
        None, description="Regular expression (RE2 syntax) that must NOT be found in the subject"
    )
    has_recording: bool | None = None
    min_attendees: Key | None = Field(None, description="At least this many attendees")


class Limits(StrictModel):
    """Caps the plan stage enforces for this policy; a plan over a cap is refused whole."""

    max_deletions: Key | None = Field(None, description="Most removals per run")
    max_percent: float | None = Field(
        None, gt=0, le=100, description="Most removals per run, as a percentage of the scope"
    )


class Policy(StrictModel):
    """One retention rule: a delete action after an age, or a retain period."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=63, examples=["recordings-90d"])
    description: str = Field(min_length=1, description="Why the policy exists")
    enabled: bool = True
    action: Action
    after: DurationText = Field(
        description="Delete actions: age at which they apply; retain: how long to keep"
    )
    scope: Scope | None = Field(None, description="Omitted: every organizer of the account")
    match: Match | None = None
    schedule: Crontab | None = Field(
        None,
        description="When the daemon runs this policy: a 5-field crontab (UTC) or @every N[s|m|h]",
        examples=["0 3 * * *"],
    )
    limits: Limits | None = None
    notice: Literal["required"] | None = Field(
        None,
        description="`required`: remove nothing its organizer was not told of at least"
        " RETENTION_OWNER_NOTICE_DAYS earlier",
    )


class HoldScope(StrictModel):
    """Organizers whose sessions a hold covers: those in `groups` plus `organizers`."""

    groups: list[GroupRef] | None = Field(None, min_length=1)
    organizers: list[OrganizerRef] | None = Field(None, min_length=1)


class Hold(StrictModel):
    """A legal hold: blocks every action on every session it covers while it is active."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", examples=["LIT-2026-014"])
    reason: str = Field(min_length=1, examples=["Smith v. Acme Corp."])
    all_sessions: bool = Field(False, alias="all", description="Freeze the whole account")
    scope: HoldScope | None = None
    meetings: list[Key] | None = Field(None, min_length=1, description="Meeting ids")
    sessions: list[Key] | None = Field(None, min_length=1, description="Session ids")
    subject: Regex | None = None
    started_between: list[CalendarDate] | None = Field(
        None, min_length=2, max_length=2, description="[first, last] start dates, inclusive, UTC"
    )
    expires: CalendarDate | None = Field(
        None, description="The hold lapses at the end of this day (UTC)"
    )

    @property
    def lapses_at(self) -> datetime | None:
        """When the hold stops protecting: the end of its `expires` day (UTC); None: never."""
        if self.expires is None:
            return None
        return datetime.combine(self.expires, time(0), tzinfo=UTC) + timedelta(days=1)

    def active_at(self, moment: datetime) -> bool:
        """Whether the hold still protects at `moment` (an aware datetime)."""
        lapses = self.lapses_at
        return lapses is None or moment < lapses

    @property
    def has_filter(self) -> bool:
        """Whether scope, subject or dates select sessions (beyond listed meetings/sessions)."""
        return any(x is not None for x in (self.scope, self.subject, self.started_between))


class PolicyFileModel(StrictModel):
    """One policy file: retention policies and/or legal holds."""

    model_config = ConfigDict(title="goto-retention policy file")

    policies: list[Policy] | None = None
    holds: list[Hold] | None = None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a policy file, for editors and `retention schema`."""
    schema = PolicyFileModel.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
