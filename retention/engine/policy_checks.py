"""Checks of a policy set against what the inventory knows: names that exist, rules that match."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlite_utils import Database

from retention.engine.records import SessionRecord
from retention.policy import PolicySet, Problem
from retention.policy.load import ItemKind
from retention.policy.matching import compile_hold, compile_policy
from retention.policy.names import unknown_names


def check_against_inventory(
    policy_set: PolicySet,
    sessions: Iterable[SessionRecord],
    known_groups: Iterable[tuple[int, str]],
    known_organizers: Iterable[tuple[int, str]],
) -> list[Problem]:
    """Unknown group and organizer references (errors) and items matching nothing (warnings)."""
    problems = _unknown_references(policy_set, known_groups, known_organizers)
    problems.extend(_matching_nothing(policy_set, sessions))
    return sorted(problems, key=lambda problem: problem.sort_key)


def known_names(db: Database) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """Every (organizer_key, email) and (group_key, name) any inventory listed, for name checks.

    A name seen once stays known after the account stops listing it (an organizer who left, a
    group renamed): a hold naming them still names someone real, and must not stop every
    removal. Only a name never seen is unknown.
    """
    organizers = _seen(db, "organizer", "SELECT organizer_key, email FROM organizers")
    groups = _seen(db, "group", "SELECT group_key, name FROM groups")
    return organizers, groups


def _seen(db: Database, kind: str, current: str) -> list[tuple[int, str]]:
    found = {(int(k), str(n)) for k, n in db.execute(current) if n}
    found.update(
        (int(k), str(n))
        for k, n in db.execute("SELECT key, name FROM names_seen WHERE kind = ?", [kind])
        if n
    )
    return sorted(found)


def lapsed_holds(policy_set: PolicySet, as_of: datetime) -> list[Problem]:
    """Holds whose `expires` day is over: they protect nothing any more (warnings)."""
    problems = []
    for hold in policy_set.holds:
        if not hold.active_at(as_of):
            problems.append(
                policy_set.locate("hold", hold.id).problem(
                    ("expires",),
                    f"hold {hold.id!r} expired on {hold.expires}: it no longer protects anything",
                    "remove the hold, or extend expires if the matter is still open",
                    "warning",
                )
            )
    return problems


def _unknown_references(
    policy_set: PolicySet,
    known_groups: Iterable[tuple[int, str]],
    known_organizers: Iterable[tuple[int, str]],
) -> list[Problem]:
    unknown = unknown_names(policy_set, known_organizers, known_groups)
    return [name.problem(policy_set) for name in unknown.all()]


def _matching_nothing(policy_set: PolicySet, sessions: Iterable[SessionRecord]) -> list[Problem]:
    """Enabled policies and holds that match no session of the inventory, whatever the age.

    A policy matches as the decision engine applies it: a delete rule when the match is
    certain, a retain rule (like a hold) unless it certainly does not.
    """
    unmatched = {policy.name: compile_policy(policy) for policy in policy_set.enabled_policies}
    uncovered = {hold.id: compile_hold(hold) for hold in policy_set.holds}
    for session in sessions:
        for name, policy in list(unmatched.items()):
            if policy.matches(session):
                del unmatched[name]
        for hold_id, hold in list(uncovered.items()):
            if hold.covers(session):
                del uncovered[hold_id]
        if not unmatched and not uncovered:
            break
    problems = [
        _unused(
            policy_set,
            "policy",
            name,
            "matches",
            "check its scope and conditions against `retention inventory`",
        )
        for name in sorted(unmatched)
    ]
    problems.extend(
        _unused(policy_set, "hold", hold_id, "covers", "check the ids and filters it lists")
        for hold_id in sorted(uncovered)
    )
    return problems


def _unused(policy_set: PolicySet, kind: ItemKind, name: str, verb: str, hint: str) -> Problem:
    """A warning on a policy or hold that no session of the inventory is subject to."""
    key = "name" if kind == "policy" else "id"
    return policy_set.locate(kind, name).problem(
        (key,), f"{kind} {name!r} {verb} no session in the inventory", hint, "warning"
    )
