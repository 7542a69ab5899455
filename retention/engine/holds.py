"""Legal holds re-checked at execution time: a hold placed after planning still wins.

The policy folder is looked at (one stat per file) every time a removal is about to leave: when a
file changed, the set is reloaded and its holds apply to that very request. A hold file in place
before a request's rate-limit turn ended keeps it off the wire; only a request already sent can
still complete. A set that no longer loads stops the run (fail closed): without knowing the
holds in force, no further removal is safe.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import structlog

from retention.engine.decide import hold_checker
from retention.engine.execute import SEND, Gate, Verdict
from retention.engine.planitem import PlanItem
from retention.engine.records import SessionRecord
from retention.policy import PolicyError, load_policy_set
from retention.policy.folder import folder_fingerprint as _fingerprint

log = structlog.get_logger(__name__)


class HoldWatcher:
    """Answers "which hold covers this session now?", reloading the holds when files change."""

    def __init__(
        self,
        folder: Path,
        clock: Callable[[], datetime],
        *,
        on_invalid: Callable[[], None],
    ) -> None:
        self._folder = folder
        self._clock = clock
        self._on_invalid = on_invalid
        self._fingerprint = _fingerprint(folder)
        self._covering = hold_checker(load_policy_set([folder]), clock())
        self._broken: str | None = None

    def _refresh(self) -> None:
        fingerprint = _fingerprint(self._folder)
        if fingerprint == self._fingerprint:
            return
        self._fingerprint = fingerprint
        try:
            self._covering = hold_checker(load_policy_set([self._folder]), self._clock())
            self._broken = None
            log.info("policy files changed during the run: holds reloaded")
        except PolicyError as exc:
            self._broken = f"policy files became invalid during the run: {exc.problems[0]}"
            log.warning("policy files invalid during the run; stopping", error=str(exc))
            self._on_invalid()

    def held_by(self, record: SessionRecord | None) -> str | None:
        """`hold:ID` of a hold covering the session, or a reason it cannot be told; else None."""
        self._refresh()
        if self._broken is not None:
            return self._broken
        if record is None:
            return "unknown session: not in the inventory, holds cannot be checked"
        covering = self._covering(record)
        return f"hold:{covering[0]}" if covering else None

    def gate(self, lookup: Callable[[int], SessionRecord | None]) -> Gate:
        """The executor's check before each DELETE: `skipped_hold` while a hold covers it."""

        def check(item: PlanItem) -> Verdict:
            hold = self.held_by(lookup(item.session_id))
            return SEND if hold is None else Verdict("skipped_hold", f"held by {hold}")

        return check
