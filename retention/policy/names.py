"""Names that match nothing: organizers and groups a hold or policy names but the account lacks.

A misspelt name must not shrink a hold or a policy silently. A hold naming an unknown organizer
or group refuses the whole run (`check_hold_names`, a preflight check, reason `unknown_name`); a
policy naming one is refused on its own (the plan blocks its removals with `by: "unknown:NAME"`).
Organizers match by key or email, groups by key or name (a key unquoted: quoted, it is a name),
names case-insensitively. A hold's meeting or session ids the inventory lacks are only
reported: they may be gone already.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from retention.errors import Refused
from retention.policy.load import ItemKind, PolicySet
from retention.policy.models import HoldScope, Scope
from retention.policy.problems import Problem

ScopeKey = Literal["groups", "organizers", "exclude_organizers", "exclude_groups"]
KnownRows = Iterable[tuple[int, str]]


@dataclass(frozen=True)
class UnknownName:
    """One reference that matches nothing: the item naming it, where, and the name as written."""

    kind: ItemKind
    item: str
    key: ScopeKey
    index: int
    name: int | str

    @property
    def what(self) -> str:
        """`group` or `organizer`."""
        return "group" if self.key in ("groups", "exclude_groups") else "organizer"

    def problem(self, policy_set: PolicySet) -> Problem:
        """The reference at its FILE:LINE:COL, as validate reports it."""
        return policy_set.locate(self.kind, self.item).problem(
            ("scope", self.key, self.index),
            f"unknown {self.what} {self.name!r}: the inventory has no such {self.what}",
            _fix(
                self.name, self.what, f"check the spelling, or run a scan if the {self.what} is new"
            ),
        )


def _fix(name: int | str, what: str, otherwise: str) -> str:
    """What to do about an unknown name; a quoted number is a name, not a key."""
    if isinstance(name, str) and name.strip().isdigit():
        return f"write the {what} key without quotes ({name.strip()}): quoted, it is a name"
    return otherwise


@dataclass(frozen=True)
class UnknownNames:
    """Unknown references by hold id and by policy name (items without any are absent)."""

    holds: Mapping[str, tuple[UnknownName, ...]]
    policies: Mapping[str, tuple[UnknownName, ...]]

    def __bool__(self) -> bool:
        return bool(self.holds or self.policies)

    def all(self) -> list[UnknownName]:
        """Every unknown reference, holds first, in file order within each item."""
        return [
            name
            for group in (self.holds, self.policies)
            for names in group.values()
            for name in names
        ]

    def blocked_by(self, policy: str) -> str | None:
        """`unknown:NAME` for a policy refused on its own, None when its names are all known."""
        names = self.policies.get(policy)
        return f"unknown:{names[0].name}" if names else None


class _Known:
    def __init__(self, rows: KnownRows) -> None:
        listed = list(rows)
        self.keys = {key for key, _ in listed}
        self.texts = {text.casefold() for _, text in listed if text}

    def __contains__(self, entry: int | str) -> bool:
        # As the matcher reads them (`policy/matching.References`): a number is a key, text a
        # name or email. Quoted, "10" names a group called 10, never the group with key 10.
        if isinstance(entry, int):
            return entry in self.keys
        return entry.casefold() in self.texts


def unknown_names(policy_set: PolicySet, organizers: KnownRows, groups: KnownRows) -> UnknownNames:
    """Each hold's and each policy's scope entries that match no organizer or group known.

    `organizers` are (organizer_key, email) rows, `groups` (group_key, name) rows.
    """
    known_organizers, known_groups = _Known(organizers), _Known(groups)
    known = {
        "groups": known_groups,
        "organizers": known_organizers,
        "exclude_organizers": known_organizers,
        "exclude_groups": known_groups,
    }
    holds: dict[str, tuple[UnknownName, ...]] = {}
    policies: dict[str, tuple[UnknownName, ...]] = {}
    for kind, item, scope in _scopes(policy_set):
        found = tuple(
            UnknownName(kind, item, key, index, entry)
            for key, entries in scope
            for index, entry in enumerate(entries)
            if entry not in known[key]
        )
        if found:
            (holds if kind == "hold" else policies)[item] = found
    return UnknownNames(holds, policies)


def _scopes(
    policy_set: PolicySet,
) -> Iterable[tuple[ItemKind, str, list[tuple[ScopeKey, list[int | str]]]]]:
    named: list[tuple[ItemKind, str, HoldScope | Scope | None]] = [
        ("hold", hold.id, hold.scope) for hold in policy_set.holds
    ]
    named += [("policy", policy.name, policy.scope) for policy in policy_set.policies]
    for kind, item, scope in named:
        if scope is not None:
            yield kind, item, _entries(scope)


def _entries(scope: HoldScope | Scope) -> list[tuple[ScopeKey, list[int | str]]]:
    """A scope's names by key; a policy's scope also names the organizers and groups it
    excludes."""
    entries: list[tuple[ScopeKey, list[int | str]]] = [
        ("groups", list(scope.groups or [])),
        ("organizers", list(scope.organizers or [])),
    ]
    if isinstance(scope, Scope):
        entries.append(("exclude_organizers", list(scope.exclude_organizers or [])))
        entries.append(("exclude_groups", list(scope.exclude_groups or [])))
    return entries


class UnknownHoldName(Refused):
    """A hold names an organizer or group the account does not have: no removal is safe."""

    def __init__(self, hold: str, name: int | str, what: str) -> None:
        super().__init__(
            f"refused: hold {hold!r} names the {what} {name!r}, which the account does not have;"
            " nothing was removed",
            hint=_fix(
                name,
                what,
                f"fix the {what} in hold {hold!r} (`retention validate` shows where), or run"
                f" `retention inventory` if the {what} is new",
            ),
            reason="unknown_name",
        )
        self.hold = hold
        self.name = name


def check_hold_names(policy_set: PolicySet, organizers: KnownRows, groups: KnownRows) -> None:
    """Preflight: raise UnknownHoldName (reason `unknown_name`) for the first unknown hold name.

    Give it the account's directory as last read (`engine.policy_checks.known_names(db)`): with
    no directory read yet every scoped hold is refused, so on a first run it belongs after the
    scan has stored the directory and before any removal.
    """
    unknown = unknown_names(policy_set, organizers, groups)
    for names in unknown.holds.values():
        first = names[0]
        raise UnknownHoldName(first.item, first.name, first.what)


def missing_hold_ids(
    policy_set: PolicySet, session_ids: Iterable[int], meeting_ids: Iterable[int]
) -> list[Problem]:
    """Warnings for hold sessions and meetings the inventory lacks (they may be gone already)."""
    sessions = set(session_ids)
    meetings = set(meeting_ids)
    problems = []
    for hold in policy_set.holds:
        location = policy_set.locate("hold", hold.id)
        for key, listed, present in (
            ("sessions", hold.sessions or [], sessions),
            ("meetings", hold.meetings or [], meetings),
        ):
            for index, entry in enumerate(listed):
                if entry not in present:
                    problems.append(
                        location.problem(
                            (key, index),
                            f"hold {hold.id!r} lists {key[:-1]} {entry}, which the inventory"
                            " does not have",
                            "check the id; it may also have been removed before the hold",
                            "warning",
                        )
                    )
    return problems
