"""Each item decided again when it is sent: fresh facts, the plan's policies, holds in force, now.

Pure: the fresh session record and the clock are arguments. Matching is `decide`'s: an item is
sent only when its own policy, with every retain rule and hold, calls for its action on the
session as it is now. Otherwise the verdict names what changed.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from retention.engine.awaiting import NoticeGate
from retention.engine.decide import Decision, Kept, nothing_kept
from retention.engine.execute import SEND, Verdict
from retention.engine.plan import SessionDecider
from retention.engine.planitem import PlanItem
from retention.engine.postponements import Postponed, active
from retention.engine.records import SessionRecord
from retention.policy import PolicySet


def _changed(reason: str) -> Verdict:
    return Verdict("skipped_changed", reason)


class Rechecker:
    """Decides items again under one policy set, compiling it once per policy and second.

    The clock is read per item but truncated to the second for the compiled rules: an
    earlier as-of time never makes more removals due, keeps retain rules and holds running
    longer, so the truncation can only keep a session.
    """

    def __init__(
        self,
        policy_set: PolicySet,
        notice: NoticeGate | None = None,
        kept: Kept = nothing_kept,
        postponed: Postponed | None = None,
    ) -> None:
        self.policy_set = policy_set
        self.notice = notice
        self.kept = kept
        self.postponed: Postponed = postponed or {}
        self._second: datetime | None = None
        self._deciders: dict[str | None, SessionDecider] = {}

    def __call__(self, item: PlanItem, fresh: SessionRecord | None, now: datetime) -> Verdict:
        """The verdict on `item` given the session as just re-read (None: not listed now)."""
        if fresh is None:
            return _changed("the session is no longer in the organizer's history")
        if fresh.organizer_key != item.organizer_key or fresh.meeting_id != item.meeting_id:
            return _changed(
                f"the session now belongs to organizer {fresh.organizer_key}, meeting "
                f"{fresh.meeting_id} (planned: {item.organizer_key}, {item.meeting_id})"
            )
        whole = self._decide(None, fresh, now)
        if whole.holds:
            return Verdict(
                "skipped_hold", "now held by " + ", ".join(f"hold:{h}" for h in whole.holds)
            )
        if (postponement := active(self.postponed, item, now)) is not None:
            return Verdict("skipped_hold", postponement.describe())
        if not any(p.name == item.policy and p.enabled for p in self.policy_set.policies):
            return _changed(f"policy {item.policy} is no longer in force")
        if self.notice is not None and (unnoticed := self.notice(item, now)) is not None:
            return _changed(unnoticed)
        own = self._decide(item.policy, fresh, now)
        if any(_covers(planned.action, item.action) for planned in own.actions):
            return self._same_target(item, fresh)
        return _changed(_why_not(item, fresh, own, whole))

    def _decide(self, policy: str | None, session: SessionRecord, now: datetime) -> Decision:
        second = now.replace(microsecond=0)
        if second != self._second:
            self._second = second
            self._deciders.clear()
        decider = self._deciders.get(policy)
        if decider is None:
            chosen = self.policy_set if policy is None else _only(self.policy_set, policy)
            decider = self._deciders[policy] = SessionDecider(chosen, second, self.kept)
        return decider(session)

    @staticmethod
    def _same_target(item: PlanItem, fresh: SessionRecord) -> Verdict:
        """A recording other than the one planned was never reviewed: it is not removed."""
        if (
            item.action == "delete_recordings"
            and item.recording_id is not None
            and fresh.recording_id != item.recording_id
        ):
            return _changed(
                f"the recording changed ({item.recording_id} planned, {fresh.recording_id} now)"
            )
        return SEND


def recheck(
    item: PlanItem, fresh: SessionRecord | None, policy_set: PolicySet, now: datetime
) -> Verdict:
    """Decide one item again (see `Rechecker`, which keeps the compiled rules between items)."""
    return Rechecker(policy_set)(item, fresh, now)


def _only(policy_set: PolicySet, name: str) -> PolicySet:
    """The named delete policy with every retain rule and hold: what alone calls for it now."""
    kept = tuple(p for p in policy_set.policies if p.name == name or p.action == "retain")
    return dataclasses.replace(policy_set, policies=kept)


def _covers(planned: str, action: str) -> bool:
    return planned in (action, "delete_session")


def _why_not(item: PlanItem, fresh: SessionRecord, own: Decision, whole: Decision) -> str:
    """What changed, in the words of the first blocker that applies."""
    policy = item.policy
    if own.blocked:
        by = own.blocked[0].by
        return f"now retained by {by.removeprefix('retain:')}" if by.startswith("retain:") else by
    if policy not in own.matched:
        if policy not in whole.in_scope:
            return f"the session left policy {policy}'s scope"
        return f"the session no longer matches policy {policy}'s conditions"
    if own.due_at is not None:
        return f"no longer due under {policy}: first due {own.due_at:%Y-%m-%d %H:%M} UTC"
    if item.action == "delete_recordings" and not fresh.has_recording:
        return "the recording is gone"
    if item.action == "delete_attendees" and fresh.attendee_count == 0:
        return "no attendees left"
    if own.unknown_fields:
        return "now unknown: " + ", ".join(own.unknown_fields)
    return own.reason or f"policy {policy} no longer calls for it"
