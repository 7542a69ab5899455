"""Checks of a policy set against what the inventory knows: names that exist, rules that match."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlite_utils import Database

from retention.engine.records import SessionRecord
from retention.policy import Hold, PolicySet, Problem
from retention.policy.matching import compile_checks, compile_hold, compile_scope, day_start
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
    """The inventory's (organizer_key, email) and (group_key, name) rows, for name checks."""
    organizers = [
        (int(k), str(e)) for k, e in db.execute("SELECT organizer_key, email FROM organizers") if e
    ]
    groups = [(int(k), str(n)) for k, n in db.execute("SELECT group_key, name FROM groups") if n]
    return organizers, groups


def lapsed_holds(policy_set: PolicySet, as_of: datetime) -> list[Problem]:
    """Holds whose `expires` day is over: they protect nothing any more (warnings)."""
    problems = []
    for hold in policy_set.holds:
        if hold.expires is not None and day_start(hold.expires) + timedelta(days=1) <= as_of:
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
    """Enabled policies and holds that match no session of the inventory, whatever the age."""
    rules = [
        (policy.name, compile_scope(policy.scope), compile_checks(policy))
        for policy in policy_set.enabled_policies
    ]
    holds = [(hold, compile_hold(hold)) for hold in policy_set.holds]
    unmatched = {name for name, _, _ in rules}
    uncovered = {hold.id for hold in policy_set.holds}
    for session in sessions:
        for name, scope, checks in rules:
            if name not in unmatched or (scope is not None and not scope.truth(session)[0]):
                continue
            if all(check(session) for _, check in checks):
                unmatched.discard(name)
        for hold, compiled in holds:
            if hold.id in uncovered and (
                _hold_lists(hold, session) or (hold.has_filter and compiled.covers(session))
            ):
                uncovered.discard(hold.id)
        if not unmatched and not uncovered:
            break
    problems = [
        policy_set.locate("policy", name).problem(
            ("name",),
            f"policy {name!r} matches no session in the inventory",
            "check its scope and conditions against `retention inventory`",
            "warning",
        )
        for name in sorted(unmatched)
    ]
    problems.extend(
        policy_set.locate("hold", hold_id).problem(
            ("id",),
            f"hold {hold_id!r} covers no session in the inventory",
            "check the ids and filters it lists",
            "warning",
        )
        for hold_id in sorted(uncovered)
    )
    return problems


def _hold_lists(hold: Hold, session: SessionRecord) -> bool:
    if hold.all_sessions:
        return True
    return session.session_id in (hold.sessions or ()) or session.meeting_id in (
        hold.meetings or ()
    )
