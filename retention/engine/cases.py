"""Policy tests: cases read from the policy folder's `tests/*.yaml`, each explained and checked.

A case describes one session and the verdict expected per action at an as-of time; only the
actions it lists are checked. A case names its organizer and group itself, so no inventory is
needed. An omitted `recording_bytes` or `attendees` is none (0); `null` is unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError

from retention.engine.awaiting import awaiting_notice
from retention.engine.explain import ActionVerdict, Explainer, Verdict
from retention.engine.records import SessionRecord
from retention.policy import PolicyError, PolicySet, Problem
from retention.policy.folder import TESTS_FOLDER, list_folder, read_policy_bytes
from retention.policy.models import DeleteAction, GroupRef, OrganizerRef
from retention.policy.names import unknown_names
from retention.policy.yamlread import ParsedYaml, read_yaml

_RECORDING_ID = "case-recording"


def _moment(value: object) -> datetime:
    """A YAML timestamp or date (a date is its midnight, UTC; no zone means UTC)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _moment(datetime.fromisoformat(value.strip()))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date or time: write 2026-12-01 or 2026-12-01T10:00:00Z")


Moment = Annotated[datetime, PlainValidator(_moment)]
Count = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class CaseSession(_Model):
    """The session a case describes; what it leaves out is unknown (counts: none)."""

    session_id: Count = 0
    meeting_id: Count = 0
    organizer: OrganizerRef | None = None
    group: GroupRef | None = None
    subject: str | None = None
    meeting_type: str | None = None
    start: Moment | None = None
    end: Moment | None = None
    recording_bytes: Count | None = 0
    attendees: Count | None = 0

    def record(self) -> SessionRecord:
        organizer, group = self.organizer, self.group
        has_recording = self.recording_bytes != 0
        return SessionRecord(
            session_id=self.session_id,
            meeting_id=self.meeting_id,
            # A case naming its organizer by email has no key: 0 stands for "no key given".
            organizer_key=organizer if isinstance(organizer, int) else 0,
            organizer_email=organizer if isinstance(organizer, str) else None,
            group_key=group if isinstance(group, int) else None,
            group_name=group if isinstance(group, str) else None,
            subject=self.subject,
            meeting_type=self.meeting_type,
            start_time=self.start,
            end_time=self.end,
            attendee_count=self.attendees,
            recording_id=_RECORDING_ID if has_recording else None,
            recording_bytes=self.recording_bytes if has_recording else None,
            recording_known=self.recording_bytes is not None,
        )


class RefusedPolicy(_Model):
    """A policy the run refused on its own: `by` is `cap:NAME` or `unknown:NAME`."""

    policy: str = Field(min_length=1)
    by: str = Field(pattern=r"^(cap|unknown):.+")


class KnownNames(_Model):
    """The organizers (keys or emails) and groups (keys or names) the account has."""

    organizers: list[OrganizerRef] = Field(default_factory=list)
    groups: list[GroupRef] = Field(default_factory=list)


class CaseContext(_Model):
    """What the run around the case knows: refusals, when the organizer was told, names.

    Without it no cap applies and a `notice: required` policy counts as not noticed.
    """

    refused: list[RefusedPolicy] = Field(default_factory=list)
    noticed: Moment | None = None
    known: KnownNames | None = None


class CaseModel(_Model):
    """One policy test: a session, an as-of time, the verdicts expected."""

    name: str = Field(min_length=1)
    as_of: Moment
    session: CaseSession
    expect: dict[DeleteAction, Verdict] = Field(min_length=1)
    context: CaseContext = Field(default_factory=CaseContext)


class CaseFile(_Model):
    """A file of policy tests."""

    tests: list[CaseModel] = Field(min_length=1)


@dataclass(frozen=True)
class Case:
    """A case ready to run, with where it is written."""

    name: str
    path: str
    line: int
    as_of: datetime
    session: SessionRecord
    expect: Mapping[DeleteAction, Verdict]
    context: CaseContext = field(default_factory=CaseContext)


@dataclass(frozen=True)
class Mismatch:
    """One action whose verdict is not the one expected."""

    action: DeleteAction
    expected: Verdict
    got: ActionVerdict

    def describe(self) -> str:
        deciding = self.got.policy or "no rule"
        by = f", by {self.got.by}" if self.got.by else ""
        return (
            f"{self.action}: expected {self.expected}, got {self.got.verdict} "
            f"(rule {deciding}{by}: {self.got.reason})"
        )


@dataclass(frozen=True)
class CaseResult:
    """A case and the actions that did not get their expected verdict."""

    case: Case
    mismatches: tuple[Mismatch, ...]

    @property
    def passed(self) -> bool:
        return not self.mismatches


def case_files(folder: Path) -> list[Path]:
    """The test files of a policy folder (`tests/*.yaml`); PolicyError for a stray entry."""
    tests = folder / TESTS_FOLDER
    if not tests.is_dir():
        return []
    listing = list_folder(tests)
    if listing.problems:
        raise PolicyError(listing.problems)
    return list(listing.files)


def load_cases(files: Iterable[Path]) -> list[Case]:
    """Every case of the files, or PolicyError with every problem (FILE:LINE:COL) found."""
    cases: list[Case] = []
    problems: list[Problem] = []
    for path in files:
        found, wrong = _load_file(path)
        cases.extend(found)
        problems.extend(wrong)
    if problems:
        raise PolicyError(problems)
    return cases


def run_cases(
    cases: Sequence[Case], policy_set: PolicySet, *, notice_days: int = 0
) -> list[CaseResult]:
    """Each case explained under the policy set as the admission step leaves it (its context's
    refusals and names, notices) and compared with what it expects."""
    results = []
    for case in cases:
        explanation = _explainer(case, policy_set, notice_days)(case.session)
        mismatches = tuple(
            Mismatch(action, expected, got)
            for action, expected in case.expect.items()
            if (got := explanation.verdict(action)).verdict != expected
        )
        results.append(CaseResult(case, mismatches))
    return results


def _explainer(case: Case, policy_set: PolicySet, notice_days: int) -> Explainer:
    context = case.context
    refused = {entry.policy: entry.by for entry in context.refused}
    if context.known is not None:
        organizers = [
            (name, "") if isinstance(name, int) else (0, name) for name in context.known.organizers
        ]
        groups = [
            (name, "") if isinstance(name, int) else (0, name) for name in context.known.groups
        ]
        names = unknown_names(policy_set, organizers, groups)
        for policy in policy_set.policies:
            by = names.blocked_by(policy.name)
            if by is not None and policy.name not in refused:
                refused[policy.name] = by
    policies = {policy.name: policy for policy in policy_set.policies}
    noticed = context.noticed

    def notice(_session: SessionRecord, _action: str, rule: str) -> datetime | None:
        return awaiting_notice(policies[rule], noticed, notice_days, case.as_of)

    return Explainer(policy_set, case.as_of, notice, refused=refused)


def _load_file(path: Path) -> tuple[list[Case], list[Problem]]:
    name = str(path)
    raw, refused = read_policy_bytes(path)
    if raw is None:
        return [], [] if refused is None else [refused]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [Problem(name, 1, 1, f"not UTF-8 text: {exc.reason}", "save as UTF-8")]
    parsed, problems = read_yaml(text, name)
    if parsed is None:
        return [], problems
    try:
        model = CaseFile.model_validate({} if parsed.data is None else parsed.data)
    except ValidationError as exc:
        return [], [_problem(error, parsed, name) for error in exc.errors()]
    cases = []
    for index, case in enumerate(model.tests):
        line, _ = parsed.position(("tests", index))
        cases.append(
            Case(
                case.name,
                name,
                line,
                case.as_of,
                case.session.record(),
                dict(case.expect),
                case.context,
            )
        )
    return cases, []


def _problem(error: Any, parsed: ParsedYaml, path: str) -> Problem:
    where = tuple(part for part in error["loc"] if isinstance(part, str | int))
    where = tuple(part for part in where if part != "[key]")
    kind = error["type"]
    line, col = parsed.position(where, key=kind == "extra_forbidden")
    label = ".".join(str(part) for part in where) or "file"
    if kind == "extra_forbidden":
        return Problem(path, line, col, f"unknown key {where[-1]!r}", _hint(where[:-1]))
    if kind == "missing":
        return Problem(path, line, col, f"missing required key {where[-1]!r}", _hint(where[:-1]))
    message = str(error.get("ctx", {}).get("error", error["msg"]))
    given = error.get("input")
    if kind != "value_error" and not isinstance(given, dict | list):
        message = f"{given!r}: {message[:1].lower()}{message[1:]}"
    return Problem(path, line, col, f"{label}: {message}", _hint(where))


def _hint(where: tuple[str | int, ...]) -> str:
    if "expect" in where:
        return (
            "expect maps delete_recordings, delete_attendees or delete_session to one of due,"
            " not_yet, held, retained, subsumed, no_op, no_rule, unknown"
        )
    if "session" in where:
        return "session keys: " + ", ".join(CaseSession.model_fields)
    if len(where) >= 2:
        return "a case has name, as_of, session and expect"
    return "a test file holds `tests:`, a list of cases (name, as_of, session, expect)"
