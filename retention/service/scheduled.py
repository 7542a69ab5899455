"""The pipeline as the daemon runs it: the policy set in force, a stoppable scan, start-up recovery.

`Pipeline` reads the policy folder at the start of each run; the daemon instead runs the set
it last loaded successfully, so that a rejected SIGHUP reload leaves the old set in force.
Legal holds are still re-read from the folder while removals execute (see engine/holds.py):
if the folder no longer loads, removals stop (fail closed) until it is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from sqlite_utils import Database

from retention.engine.scan import ScanReport
from retention.engine.state import open_state_db
from retention.errors import RuntimeFailure
from retention.goto.client import GoToClient
from retention.policy import PolicySet
from retention.service.lock import acquire
from retention.service.pipeline import Pipeline, RunResult
from retention.service.record import new_run_id, open_audit


class RunStopped(RuntimeFailure):
    """A stop (SIGTERM or the run's deadline) came while the inventory was being read."""


@dataclass
class ScheduledPipeline(Pipeline):
    """One daemon run: the loaded policy set, and what its clients and scans did, for metrics."""

    policy_set: PolicySet | None = None
    clients: list[GoToClient] = field(default_factory=list)
    scans: list[ScanReport] = field(default_factory=list)

    def load_policies(self) -> PolicySet:
        return self.policy_set if self.policy_set is not None else super().load_policies()

    def client(self) -> GoToClient:
        client = super().client()
        self.clients.append(client)
        return client

    async def refresh(self, client: GoToClient, db: Database) -> ScanReport:
        """Scan, unless a stop comes first: reading is safe to abandon, nothing is removed yet."""
        scanning = asyncio.ensure_future(super().refresh(client, db))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({scanning, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not scanning.done():
            scanning.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scanning
            raise RunStopped(
                "the run was stopped while reading the inventory; nothing was removed",
                hint="the next run reads it again",
            )
        report = scanning.result()
        self.scans.append(report)
        return report

    async def start_up(self) -> int:
        """Check the databases and the token under the lock; reconcile intents left pending.

        Returns how many pending intents were reconciled. Raises when the databases cannot be
        opened, no access token can be had, or a pending intent cannot be resolved.
        """
        with acquire(self.settings.state_dir, 0, command="retention daemon (start-up)"):
            db = open_state_db(self.settings.state_db)
            with open_audit(self.settings, self.clock) as audit:
                async with self.client() as client:
                    await client.auth.access_token()
                    pending = audit.pending_intents()
                    if not pending:
                        return 0
                    started = self.clock()
                    result = RunResult(new_run_id(started), started)
                    audit.run_started(
                        run_id=result.run_id,
                        trigger="daemon start-up",
                        settings_summary=self._summary(),
                    )
                    try:
                        result.reconciled = await self._reconcile(client, db, audit, result)
                    except BaseException:
                        result.result = "failed"
                        raise
                    finally:
                        self._finish(audit, result)
                    return len(pending)
