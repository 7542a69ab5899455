"""Three-valued matching of scopes, conditions and holds against the facts of one session.

Each condition answers True, False or None (unknown: the session lacks the value it reads).
Callers decide what unknown means: a delete rule needs True, a retain rule or a hold only
needs "not False", so that a missing value can keep a session but never delete one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from retention.policy.models import Hold, HoldScope, Policy
from retention.policy.models import Scope as ScopeModel

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
    def has_recording(self) -> bool: ...


Check = Callable[[SessionFacts], Truth]


def any_true(results: Iterable[Truth]) -> Truth:
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
    """Organizers in `groups` plus `organizers`, less `excluded`; None parts are not given."""

    groups: References | None
    organizers: References | None
    excluded: References | None

    def truth(self, session: SessionFacts) -> tuple[Truth, tuple[str, ...]]:
        included: list[Truth] = []
        unknown: list[str] = []
        if self.groups is not None:
            in_group = reference_check(
                self.groups.keys, self.groups.texts, session.group_key, session.group_name
            )
            included.append(in_group)
            if in_group is None:
                unknown.append("group")
        if self.organizers is not None:
            included.append(self._organizer(self.organizers, session, unknown))
        result = any_true(included) if included else True
        if self.excluded is not None and result is not False:
            excluded = self._organizer(self.excluded, session, unknown)
            result = False if excluded else (None if excluded is None else result)
        return result, tuple(unknown) if result is None else ()

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
        found = re.compile(match.subject).search
        checks.append(
            ("subject", lambda s: None if s.subject is None else found(s.subject) is not None)
        )
    if match.subject_not is not None:
        refused = re.compile(match.subject_not).search
        checks.append(
            ("subject", lambda s: None if s.subject is None else refused(s.subject) is None)
        )
    if match.has_recording is not None:
        wanted = match.has_recording
        checks.append(("recording", lambda s: s.has_recording is wanted))
    if match.min_attendees is not None:
        least = match.min_attendees
        checks.append(
            (
                "attendee_count",
                lambda s: None if s.attendee_count is None else s.attendee_count >= least,
            )
        )
    return tuple(checks)


def compile_scope(policy_scope: ScopeModel | HoldScope | None) -> Scope | None:
    if policy_scope is None:
        return None
    return Scope(
        References.of(policy_scope.groups),
        References.of(policy_scope.organizers),
        References.of(getattr(policy_scope, "exclude_organizers", None)),
    )


@dataclass(frozen=True)
class CompiledHold:
    """An active hold: sessions and meetings it lists, plus an optional filter."""

    hold_id: str
    everything: bool
    scope: Scope | None
    subject: Callable[[str], object] | None
    first_day: datetime | None
    after_last_day: datetime | None
    lapses: datetime | None

    def scope_allows(self, session: SessionFacts) -> bool:
        """Whether the organizer may be in the hold's scope (unknown counts as yes)."""
        return self.everything or self.scope is None or self.scope.truth(session)[0] is not False

    def filter_allows(self, session: SessionFacts) -> bool:
        """Whether subject and dates may match, given `scope_allows`; unknown counts as yes.

        Only meaningful for a hold with `all: true` or a filter; listed ids are looked up apart.
        """
        if self.everything:
            return True
        subject = session.subject
        if self.subject is not None and subject is not None and self.subject(subject) is None:
            return False
        start = session.start_time
        if self.first_day is not None and self.after_last_day is not None and start is not None:
            return self.first_day <= start < self.after_last_day
        return True

    def covers(self, session: SessionFacts) -> bool:
        """Whether the filter (scope, subject, dates) covers the session."""
        return self.scope_allows(session) and self.filter_allows(session)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def compile_hold(hold: Hold) -> CompiledHold:
    dates = hold.started_between
    return CompiledHold(
        hold_id=hold.id,
        everything=hold.all_sessions,
        scope=compile_scope(hold.scope),
        subject=re.compile(hold.subject).search if hold.subject is not None else None,
        first_day=day_start(dates[0]) if dates else None,
        after_last_day=day_start(dates[1]) + timedelta(days=1) if dates else None,
        lapses=day_start(hold.expires) + timedelta(days=1) if hold.expires else None,
    )
