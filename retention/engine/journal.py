"""The executor's audit writes: intents committed in groups before their DELETEs, outcomes after.

SQLite's commit (an fsync) and the trip to the writer thread cost more than the rows, so they
are shared: the intents asked for while a commit is under way go together in the next one
(group commit), and the outcomes taken since the last commit go with them. An intent is durable
when `intent` returns; an outcome when the next commit or `flush` is done. An outcome that a
crash catches before its commit leaves its intent pending, as a crash just before the answer
came would, and reconciliation resolves it by reading the API.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from retention.audit.log import AuditLog

Fields = dict[str, Any]


class Journal:
    """Intents and outcomes for one run, written on one thread off the event loop."""

    def __init__(self, audit: AuditLog) -> None:
        self._audit = audit
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._outcomes: list[Fields] = []
        self._intents: list[tuple[Fields, asyncio.Future[int]]] = []
        self._committing: asyncio.Task[None] | None = None

    async def intent(self, **fields: Any) -> int:
        """Append an intent (`AuditLog.intent`'s fields); its row number once it is durable."""
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._intents.append((fields, waiter))
        if self._committing is None or self._committing.done():
            self._committing = asyncio.create_task(self._commit_queued())
        return await waiter

    def outcome(self, **fields: Any) -> None:
        """Take an outcome (`AuditLog.outcome`'s fields), committed with the next intents."""
        self._outcomes.append(fields)

    async def flush(self) -> None:
        """Commit the outcomes taken so far; durable when this returns."""
        if self._outcomes:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._thread, self._commit, self._take_outcomes(), [])

    def close(self) -> None:
        """Commit the outcomes not yet written and stop the writer thread."""
        if self._outcomes:
            self._thread.submit(self._commit, self._take_outcomes(), []).result()
        self._thread.shutdown(wait=True)

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._intents:
            queued, self._intents = self._intents, []
            try:
                seqs = await loop.run_in_executor(
                    self._thread, self._commit, self._take_outcomes(), [f for f, _ in queued]
                )
            except asyncio.CancelledError:
                for _, waiter in queued:
                    waiter.cancel()
                raise
            except Exception as exc:  # the audit record refused them: every waiter is told
                for _, waiter in queued:
                    if not waiter.done():
                        waiter.set_exception(exc)
                continue
            for (_, waiter), seq in zip(queued, seqs, strict=True):
                if not waiter.done():
                    waiter.set_result(seq)

    def _take_outcomes(self) -> list[Fields]:
        outcomes, self._outcomes = self._outcomes, []
        return outcomes

    def _commit(self, outcomes: list[Fields], intents: list[Fields]) -> list[int]:
        what = f"{len(intents)} intent(s) and {len(outcomes)} outcome(s)"
        with self._audit.transaction(what):
            for fields in outcomes:
                self._audit.outcome(**fields)
            return [self._audit.intent(**fields) for fields in intents]
