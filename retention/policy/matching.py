"""Three-valued matching of scopes, conditions and holds against the facts of one session.

Each condition answers True, False or None (unknown: the session lacks the value it reads).
A delete rule acts only on True; a retain rule or a hold applies unless the answer is False,
so that a missing value can keep a session but never delete one (`acts`). This is the only
matcher: the decision engine and the inventory checks both call it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from retention.policy.models import Action, Hold, HoldScope, Policy
from retention.policy.models import Scope as ScopeModel
from retention.policy.patterns import compile_pattern

Truth = bool | None


class SessionFacts(Protocol):
    """What matching reads from a session; `None` means the value is unknown."""

    @property
    def session_id(self) -> int: ...
    @property
    def meeting_id(self) -> int: ...
    @property
    def organizer_key(self) -> int: ...
    @property
    def organizer_email(self) -> str | None: ...
    @property
    def group_key(self) -> int | None: ...
    @property
    def group_name(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def meeting_type(self) -> str | None: ...
    @property
    def start_time(self) -> datetime | None: ...
    @property
    def attendee_count(self) -> int | None: ...
    @property
    def has_recording(self) -> bool | None: ...


Check = Callable[[SessionFacts], Truth]


def acts(action: Action, truth: Truth) -> bool:
    """Whether a rule whose match answered `truth` applies: delete needs True, retain not False."""
    return truth is not False if action == "retain" else truth is True


def any_true(results: Iterable[Truth]) -> Truth:
    """True if any is True, else None if any is unknown, else False."""
    seen_unknown = False
    for result in results:
        if result:
            return True
        seen_unknown = seen_unknown or result is None
    return None if seen_unknown else False


def reference_check(
    keys: frozenset[int], texts: frozenset[str], key: int | None, text: str | None
) -> Truth:
    """Whether a record named by `key` and `text` is among `keys` or `texts` (casefolded)."""
    if key is not None and key in keys:
        return True
    if not texts:
        return None if key is None else False
    if text is None:
        return None
    return text.casefold() in texts


@dataclass(frozen=True)
class References:
    """A list of names/emails and keys, split by type so 1001 matches a key, "Sales" a name."""

    keys: frozenset[int]
    texts: frozenset[str]

    @classmethod
    def of(cls, entries: Iterable[int | str] | None) -> References | None:
        if entries is None:
            return None
        entries = list(entries)
        keys = frozenset(e for e in entries if isinstance(e, int))
        return cls(keys, frozenset(e.casefold() for e in entries if isinstance(e, str)))


@dataclass(frozen=True)
class Scope:
    """Organizers in `groups` plus `organizers`, less `excluded` and the organizers in
    `excluded_groups`; None parts are not given."""

    groups: References | None
    organizers: References | None
    excluded: References | None
    excluded_groups: References | None = None

    def truth(self, session: SessionFacts) -> tuple[Truth, tuple[str, ...]]:
        included: list[Truth] = []
        unknown: list[str] = []
        if self.groups is not None:
            included.append(self._group(self.groups, session, unknown))
        if self.organizers is not None:
            included.append(self._organizer(self.organizers, session, unknown))
        result = any_true(included) if included else True
        if result is not False:
            # Excluded when either exclusion holds; an exclusion that cannot be told leaves the
            # scope unknown, so that a delete rule does not act and a retain rule keeps.
            exclusions: list[Truth] = []
            if self.excluded is not None:
                exclusions.append(self._organizer(self.excluded, session, unknown))
            if self.excluded_groups is not None:
                exclusions.append(self._group(self.excluded_groups, session, unknown))
            excluded = any_true(exclusions)
            result = False if excluded else (None if excluded is None else result)
        return result, tuple(dict.fromkeys(unknown)) if result is None else ()

    @staticmethod
    def _group(refs: References, session: SessionFacts, unknown: list[str]) -> Truth:
        found = reference_check(refs.keys, refs.texts, session.group_key, session.group_name)
        if found is None:
            unknown.append("group")
        return found

    @staticmethod
    def _organizer(refs: References, session: SessionFacts, unknown: list[str]) -> Truth:
        found = reference_check(
            refs.keys, refs.texts, session.organizer_key, session.organizer_email
        )
        if found is None:
            unknown.append("organizer_email")
        return found


def compile_checks(policy: Policy) -> tuple[tuple[str, Check], ...]:
    """The match conditions given, each as (field it reads, three-valued check)."""
    match = policy.match
    if match is None:
        return ()
    checks: list[tuple[str, Check]] = []
    if match.meeting_types is not None:
        types = frozenset(match.meeting_types)
        checks.append(
            (
                "meeting_type",
                lambda s: None if s.meeting_type is None else s.meeting_type.lower() in types,
            )
        )
    if match.subject is not None:
        found = compile_pattern(match.subject)
        checks.append(("subject", lambda s: None if s.subject is None else found(s.subject)))
    if match.subject_not is not None:
        refused = compile_pattern(match.subject_not)
        checks.append(("subject", lambda s: None if s.subject is None else not refused(s.subject)))
    if match.has_recording is not None:
        wanted = match.has_recording
        checks.append(
            (
                "recording",
                lambda s: None if s.has_recording is None else s.has_recording is wanted,
            )
        )
    if match.min_attendees is not None:
        least = match.min_attendees
        checks.append(
            (
                "attendee_count",
                lambda s: None if s.attendee_count is None else s.attendee_count >= least,
            )
        )
    return tuple(checks)


def conditions_truth(
    checks: Iterable[tuple[str, Check]],
    session: SessionFacts,
    truth: Truth = True,
    unknown: tuple[str, ...] = (),
) -> tuple[Truth, tuple[str, ...]]:
    """All of `checks` on top of `truth` (the scope's): False at the first False, else None
    with the fields left unknown, else True."""
    for field_name, check in checks:
        result = check(session)
        if result is False:
            return False, ()
        if result is None:
            truth = None
            unknown = (*unknown, field_name)
    return truth, unknown if truth is None else ()


def compile_scope(policy_scope: ScopeModel | HoldScope | None) -> Scope | None:
    if policy_scope is None:
        return None
    return Scope(
        References.of(policy_scope.groups),
        References.of(policy_scope.organizers),
        References.of(getattr(policy_scope, "exclude_organizers", None)),
        References.of(getattr(policy_scope, "exclude_groups", None)),
    )


@dataclass(frozen=True)
class CompiledPolicy:
    """A policy's scope and conditions, ready to match sessions."""

    name: str
    action: Action
    scope: Scope | None
    checks: tuple[tuple[str, Check], ...]

    def scope_truth(self, session: SessionFacts) -> tuple[Truth, tuple[str, ...]]:
        return (True, ()) if self.scope is None else self.scope.truth(session)

    def truth(self, session: SessionFacts) -> tuple[Truth, tuple[str, ...]]:
        """Whether scope and conditions match, and the fields whose absence left it unknown."""
        truth, unknown = self.scope_truth(session)
        if truth is False:
            return False, ()
        return conditions_truth(self.checks, session, truth, unknown)

    def matches(self, session: SessionFacts) -> bool:
        """Whether the policy applies to the session, whatever its age (see `acts`)."""
        return acts(self.action, self.truth(session)[0])


def compile_policy(policy: Policy) -> CompiledPolicy:
    return CompiledPolicy(
        policy.name, policy.action, compile_scope(policy.scope), compile_checks(policy)
    )


@dataclass(frozen=True)
class CompiledHold:
    """A hold: sessions and meetings it lists, plus an optional filter (scope, subject, dates)."""

    hold_id: str
    everything: bool
    sessions: frozenset[int]
    meetings: frozenset[int]
    has_filter: bool
    scope: Scope | None
    subject: Callable[[str], bool] | None
    started_between: tuple[datetime, datetime] | None
    lapses: datetime | None

    def scope_allows(self, session: SessionFacts) -> bool:
        """Whether the organizer may be in the hold's scope (unknown counts as yes)."""
        return self.scope is None or self.scope.truth(session)[0] is not False

    def filter_allows(self, session: SessionFacts) -> bool:
        """Whether subject and start date may match; unknown counts as yes."""
        subject = session.subject
        if self.subject is not None and subject is not None and not self.subject(subject):
            return False
        start = session.start_time
        if self.started_between is not None and start is not None:
            first, after_last = self.started_between
            return first <= start < after_last
        return True

    def covers(self, session: SessionFacts) -> bool:
        """Whether the hold covers the session: listed, or its filter may match it."""
        if self.everything:
            return True
        if session.session_id in self.sessions or session.meeting_id in self.meetings:
            return True
        return self.has_filter and self.scope_allows(session) and self.filter_allows(session)


def compile_hold(hold: Hold) -> CompiledHold:
    dates = hold.started_between
    return CompiledHold(
        hold_id=hold.id,
        everything=hold.all_sessions,
        sessions=frozenset(hold.sessions or ()),
        meetings=frozenset(hold.meetings or ()),
        has_filter=hold.has_filter,
        scope=compile_scope(hold.scope),
        subject=compile_pattern(hold.subject) if hold.subject is not None else None,
        started_between=(_day_start(dates[0]), _day_start(dates[1]) + timedelta(days=1))
        if dates
        else None,
        lapses=hold.lapses_at,
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)
