"""What one run did: its tally, plan, reconciliation and execution, for the CLI and the daemon."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from retention.engine.coverage import ScopeLeft
from retention.engine.execute import ExecutionReport
from retention.engine.plan import Plan
from retention.engine.reconcile import ReconcileReport
from retention.service.logging import RunResult as RunState
from retention.service.session import RunTally, Session


@dataclass
class RunResult:
    """What one run did, for the CLI's rendering, the daemon's metrics and the exit code."""

    run_id: str
    started_at: datetime
    tally: RunTally = field(default_factory=RunTally)
    plan: Plan | None = None
    reconciled: ReconcileReport | None = None
    execution: ExecutionReport = field(default_factory=ExecutionReport)
    planned: int = 0
    # Removals waiting on an owner notice that could not be sent (the run stays `ok`).
    notice_unsent: int = 0
    # Organizers whose sessions a hold keeps though they left its scope (counts that grew).
    scope_left: list[ScopeLeft] = field(default_factory=list)

    @classmethod
    def of(cls, session: Session) -> RunResult:
        """The result of this session's run; the session records what it says at its end."""
        result = cls(session.run_id, session.started_at, session.tally)
        session.counts = result.counts
        return result

    @property
    def result(self) -> RunState:
        return self.tally.result

    @result.setter
    def result(self, value: RunState) -> None:
        self.tally.result = value

    def counts(self) -> dict[str, int]:
        """Counts for the run_finished event and the summary line."""
        counts: dict[str, int] = {"planned": self.planned}
        counts.update(self.execution.outcomes)
        counts["not_started"] = self.execution.not_started
        if self.reconciled:
            counts["reconciled"] = self.reconciled.pending
        if self.notice_unsent:
            counts["notice_unsent"] = self.notice_unsent
        if self.scope_left:
            counts["hold_scope_left"] = sum(left.sessions for left in self.scope_left)
        return counts

    def executed(self, report: ExecutionReport) -> None:
        """Take the executor's report: a halt or a failed removal sets the run's result."""
        self.execution = report
        self.tally.error = report.halted
        if report.halted:
            self.result = "halted"
        elif not report.ok:
            self.result = "failed"
