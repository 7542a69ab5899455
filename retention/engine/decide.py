"""The decision engine: sessions, policies, holds and an as-of time in; one decision per session.

Pure and streaming: no clock, no I/O, memory independent of the number of sessions. Conditions
are three-valued (True, False, None for unknown): a delete rule applies only when every condition
is True; a retain rule or a hold applies unless some condition is False, so that an unknown value
can only ever keep a session, never delete it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from retention.engine.records import SessionRecord
from retention.policy import PolicySet
from retention.policy.durations import Duration
from retention.policy.matching import (
    CompiledHold,
    CompiledPolicy,
    Truth,
    acts,
    compile_hold,
    compile_policy,
    conditions_truth,
)
from retention.policy.models import DeleteAction

ScopeKey = tuple[int, str | None, int | None, str | None]
# The holds that covered a session in an earlier run, by session id: a hold keeps what it has
# covered while it is in force, even after the organizer left its scope (engine/coverage.py).
Kept = Callable[[int], Iterable[str]]


def nothing_kept(_session_id: int) -> tuple[str, ...]:
    """No earlier coverage (a decision on the scope alone)."""
    return ()


# Past this many distinct organizer/group combinations the scope cache starts afresh, so memory
# stays bounded by the account's size even on an unusual inventory.
SCOPE_CACHE_LIMIT = 100_000
ACTION_ORDER: tuple[DeleteAction, ...] = ("delete_session", "delete_attendees", "delete_recordings")


@dataclass(frozen=True, slots=True)
class Planned:
    """One request to make: the action, the policy that caused it, every other policy matched."""

    action: DeleteAction
    policy: str
    also_matched: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Blocked:
    """An action a delete policy called for, stopped by `by` ("hold:ID" or "retain:NAME")."""

    action: DeleteAction
    policy: str
    by: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one session, and why.

    `matched` names every enabled policy that matched (by scope and conditions, whatever the
    age), `holds` every active hold covering the session, `in_scope` every delete policy whose
    scope certainly covers it (the denominator of `max_percent`). `reason` explains a session with
    no action. `unknown_fields` names values whose absence prevented an action. `kept_holds` are
    the holds among `holds` that cover the session only because they covered it before (its
    organizer has left their scope since).
    """

    session: SessionRecord
    actions: tuple[Planned, ...]
    matched: tuple[str, ...]
    holds: tuple[str, ...]
    blocked: tuple[Blocked, ...]
    in_scope: tuple[str, ...]
    reason: str | None
    unknown_fields: tuple[str, ...]
    due_at: datetime | None
    kept_holds: tuple[str, ...] = ()

    @property
    def unknown(self) -> bool:
        """Whether a value the API did not give kept a policy from acting."""
        return bool(self.unknown_fields)


@dataclass(frozen=True, slots=True)
class Findings:
    """A session's decision and what the rules found before conflicts were resolved (explain).

    `due` lists every (action, rule) due now; `wanted` the strongest of them (what would be
    planned without blockers); `waiting` each matching delete rule not yet old enough with the
    time it becomes due; `unknown` per action the fields that kept a rule from acting;
    `blockers` the holds covering the session, then the retain rules in force (longest first),
    each with the time it stops blocking (None: never known).
    """

    decision: Decision
    due: tuple[tuple[str, str], ...]
    wanted: Mapping[DeleteAction, str]
    waiting: tuple[tuple[str, str, datetime], ...]
    unknown: Mapping[str, tuple[str, ...]]
    blockers: tuple[tuple[str, datetime | None], ...]


@dataclass(frozen=True)
class _Rule:
    """A policy ready to apply at one as-of time."""

    policy: CompiledPolicy
    after: Duration
    cutoff: datetime

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def action(self) -> str:
        return self.policy.action


# A rule whose scope may cover an organizer: the rule, the scope's truth, unknown scope fields.
_Candidate = tuple[_Rule, Truth, tuple[str, ...]]
# Per organizer: candidate rules, and the delete rules surely in scope.
_ScopeEntry = tuple[tuple[_Candidate, ...], tuple[str, ...]]


@dataclass
class _Findings:
    """What the rules found for one session, before conflicts are resolved."""

    matched: list[str] = field(default_factory=list)
    due: list[tuple[str, str]] = field(default_factory=list)
    retains: list[_Rule] = field(default_factory=list)
    waiting: list[_Rule] = field(default_factory=list)
    unknown: dict[str, set[str]] = field(default_factory=dict)
    noop: list[str] = field(default_factory=list)

    def add_unknown(self, action: str, fields: Iterable[str]) -> None:
        self.unknown.setdefault(action, set()).update(fields)


class _Engine:
    """Policies and holds compiled once for one as-of time."""

    def __init__(self, policy_set: PolicySet, as_of: datetime, kept: Kept = nothing_kept) -> None:
        if as_of.tzinfo is None:
            raise ValueError("as_of must be an aware datetime")
        # Rules in name order: matches then come out sorted and the first due rule per action
        # is the first by name, whatever the order of files and rules.
        self.rules = tuple(
            _Rule(compile_policy(p), p.after, p.after.cutoff(as_of))
            for p in sorted(policy_set.enabled_policies, key=lambda policy: policy.name)
        )
        self.holds: dict[str, CompiledHold] = {
            hold.id: compile_hold(hold)
            for hold in sorted(policy_set.holds, key=lambda hold: hold.id)
            if hold.active_at(as_of)
        }
        self.scope_cache: dict[ScopeKey, _ScopeEntry] = {}
        self.kept = kept

    def in_scope(self, session: SessionRecord) -> _ScopeEntry:
        """Rules whose scope may cover the organizer, and the delete rules whose scope surely
        does. Cached per organizer and group: scope depends on nothing else.
        """
        key = (
            session.organizer_key,
            session.organizer_email,
            session.group_key,
            session.group_name,
        )
        found = self.scope_cache.get(key)
        if found is None:
            if len(self.scope_cache) >= SCOPE_CACHE_LIMIT:
                self.scope_cache.clear()
            entries = []
            for rule in self.rules:
                truth, unknown = rule.policy.scope_truth(session)
                if truth is not False:
                    entries.append((rule, truth, unknown))
            certain = tuple(r.name for r, truth, _ in entries if truth and r.action != "retain")
            found = self.scope_cache[key] = (tuple(entries), certain)
        return found

    def holds_covering(self, session: SessionRecord) -> tuple[str, ...]:
        """The active holds covering the session, by id: by their scope now or kept."""
        now, kept = self.coverage(session)
        return tuple(sorted((*now, *kept)))

    def coverage(self, session: SessionRecord) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The active holds whose scope covers the session now, and those only keeping it."""
        now = tuple(hold_id for hold_id, hold in self.holds.items() if hold.covers(session))
        kept = tuple(
            sorted({h for h in self.kept(session.session_id) if h in self.holds and h not in now})
        )
        return now, kept

    def findings(self, session: SessionRecord, candidates: tuple[_Candidate, ...]) -> _Findings:
        found = _Findings()
        end = session.end_time
        unproven = _unproven_time(session)
        for rule, scope_truth, scope_unknown in candidates:
            truth, unknown = conditions_truth(
                rule.policy.checks, session, scope_truth, scope_unknown
            )
            if truth is False:
                continue
            if not acts(rule.policy.action, truth):
                found.add_unknown(rule.action, unknown)
                continue
            found.matched.append(rule.name)
            if rule.action == "retain":
                if unproven or end is None or end > rule.cutoff:
                    found.retains.append(rule)
            elif unproven:
                found.add_unknown(rule.action, (unproven,))
            elif end is not None and end <= rule.cutoff and rule.action == "delete_session":
                self.due_unless_recording_unknown(session, rule, found)
            else:
                self.age_and_noop(session, rule, found)
        return found

    @staticmethod
    def age_and_noop(session: SessionRecord, rule: _Rule, found: _Findings) -> None:
        """Sort a matching delete rule into due, waiting, unknown or no-op."""
        if session.end_time is None:
            found.add_unknown(rule.action, ("end_time",))
        elif session.end_time > rule.cutoff:
            found.waiting.append(rule)
        elif rule.action == "delete_recordings" and session.has_recording is None:
            found.add_unknown(rule.action, ("recording",))
        elif rule.action == "delete_recordings" and not session.has_recording:
            found.noop.append("no recording")
        elif rule.action == "delete_attendees" and session.attendee_count is None:
            found.add_unknown(rule.action, ("attendee_count",))
        elif rule.action == "delete_attendees" and session.attendee_count == 0:
            found.noop.append("no attendees")
        else:
            found.due.append((rule.action, rule.name))

    @staticmethod
    def due_unless_recording_unknown(session: SessionRecord, rule: _Rule, found: _Findings) -> None:
        """A due session removal, unless its recording is unknown: removing the session removes
        the recording, and the intent must name what it removes."""
        if session.has_recording is None:
            found.add_unknown(rule.action, ("recording",))
        else:
            found.due.append((rule.action, rule.name))

    def decide(self, session: SessionRecord) -> Decision:
        candidates, in_scope = self.in_scope(session)
        found = self.findings(session, candidates)
        now, kept = self.coverage(session)
        holds = tuple(sorted((*now, *kept)))
        wanted = _strongest(found.due)
        covered = ACTION_ORDER if "delete_session" in wanted else tuple(wanted)
        unknown = sorted(
            {
                name
                for action, names in found.unknown.items()
                if action not in covered
                for name in names
            }
        )
        matched = tuple(found.matched)
        blockers = self.blockers(session, holds, found.retains) if wanted else []
        blocked = tuple(
            Blocked(action, policy, by, until)
            for action, policy in wanted.items()
            for by, until in blockers
        )
        actions = (
            ()
            if blockers
            else tuple(
                Planned(action, policy, tuple(name for name in matched if name != policy))
                for action, policy in wanted.items()
            )
        )
        end = session.end_time
        due_at = None
        if found.waiting and end is not None and not actions:
            due_at = min(rule.after.due_at(end) for rule in found.waiting)
        return Decision(
            session=session,
            actions=actions,
            matched=matched,
            holds=holds,
            blocked=blocked,
            in_scope=in_scope,
            reason=None if actions else _reason(holds, blocked, found, unknown, due_at),
            unknown_fields=tuple(unknown),
            due_at=due_at,
            kept_holds=kept,
        )

    def examine(self, session: SessionRecord) -> Findings:
        """The decision with the findings behind it, for explaining one session."""
        candidates, _ = self.in_scope(session)
        found = self.findings(session, candidates)
        holds = self.holds_covering(session)
        end = session.end_time
        return Findings(
            decision=self.decide(session),
            due=tuple(found.due),
            wanted=_strongest(found.due),
            waiting=tuple(
                (rule.action, rule.name, rule.after.due_at(end))
                for rule in found.waiting
                if end is not None
            ),
            unknown={action: tuple(sorted(names)) for action, names in found.unknown.items()},
            blockers=tuple(self.blockers(session, holds, found.retains)),
        )

    def blockers(
        self, session: SessionRecord, holds: tuple[str, ...], retains: list[_Rule]
    ) -> list[tuple[str, datetime | None]]:
        """Holds first, then the retain rules still running, the longest first."""
        found: list[tuple[str, datetime | None]] = [
            (f"hold:{hold_id}", self.holds[hold_id].lapses) for hold_id in holds
        ]
        end = session.end_time
        kept = [
            (f"retain:{rule.name}", rule.after.due_at(end) if end else None) for rule in retains
        ]
        kept.sort(key=lambda item: (item[1] is not None, -(item[1] or _EPOCH).timestamp(), item[0]))
        return found + kept


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _unproven_time(session: SessionRecord) -> str | None:
    """The time field that keeps a session's age from being proven, or None when it is proven.

    Age runs from the end, but an end is only believable with a known start no later than
    it: a missing or malformed start, or one after the end, means the API's row is not to
    be trusted, so no deletion can be justified from it.
    """
    if session.end_time is None:
        return "end_time"
    if session.start_time is None or session.start_time > session.end_time:
        return "start_time"
    return None


def _strongest(due: list[tuple[str, str]]) -> dict[DeleteAction, str]:
    """The actions to request: a session delete alone, else attendee and recording deletes.

    The policy named for each is the first by name among those calling for it, so that the
    result does not depend on the order of rules or files.
    """
    first: dict[str, str] = {}
    for action, name in due:
        if action not in first or name < first[action]:
            first[action] = name
    if "delete_session" in first:
        return {"delete_session": first["delete_session"]}
    return {action: first[action] for action in ACTION_ORDER if action in first}


def _reason(
    holds: tuple[str, ...],
    blocked: tuple[Blocked, ...],
    found: _Findings,
    unknown: list[str],
    due_at: datetime | None,
) -> str:
    if holds:
        return "held by " + ", ".join(f"hold:{hold_id}" for hold_id in holds)
    if blocked:
        by, until = blocked[0].by, blocked[0].until
        when = f"until {until:%Y-%m-%d %H:%M} UTC" if until else "while its end time is unknown"
        return f"retained by {by.removeprefix('retain:')} {when}"
    if unknown:
        return "unknown " + ", ".join(unknown) + ": a policy may apply, so nothing is deleted"
    if due_at is not None:
        return f"not old enough: first due {due_at:%Y-%m-%d %H:%M} UTC"
    if found.noop:
        return "nothing to delete: " + ", ".join(sorted(set(found.noop)))
    return "no delete policy applies"


def decide(
    sessions: Iterable[SessionRecord],
    policy_set: PolicySet,
    as_of: datetime,
    kept: Kept = nothing_kept,
) -> Iterator[Decision]:
    """One decision per session, in input order, streaming; `as_of` is an aware datetime;
    `kept` gives the holds that covered a session before (they keep it while in force)."""
    engine = _Engine(policy_set, as_of, kept)
    for session in sessions:
        yield engine.decide(session)


def hold_checker(
    policy_set: PolicySet, as_of: datetime, kept: Kept = nothing_kept
) -> Callable[[SessionRecord], tuple[str, ...]]:
    """The ids of the active holds covering a session, for re-checking at execution time."""
    return _Engine(policy_set, as_of, kept).holds_covering


def examiner(
    policy_set: PolicySet, as_of: datetime, kept: Kept = nothing_kept
) -> Callable[[SessionRecord], Findings]:
    """The decision of a session with the findings behind it (`retention explain`, tests)."""
    return _Engine(policy_set, as_of, kept).examine
