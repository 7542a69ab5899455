"""What a run's end alerts: a failure, a refusal (by reason code), a halt, the witness, the token.

Called once, where every run (`run`, `apply`, the daemon's) ends: the run session. A run that
ends ok clears the run conditions in force ("resolved"); a run a person declined or a stop
interrupted says nothing. Nothing here raises: alerting never changes a run's outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlite_utils import Database

from retention.alerts.conditions import Alert, settle
from retention.errors import Refused, RetentionError
from retention.goto.tokenstore import TokenStore
from retention.settings import Settings

log = structlog.get_logger(__name__)

# GoTo's refresh tokens live about 30 days: five days' warning before they lapse.
TOKEN_AGE_ALERT = timedelta(days=25)
RUN_CONDITIONS = "run:"
WITNESS = "witness"
TOKEN_CONDITION = "refresh_token_age"  # noqa: S105 (a condition's name)
_SHOWN_COUNTS = (
    "planned",
    "deleted",
    "already_absent",
    "failed",
    "skipped_hold",
    "skipped_changed",
)


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, as its alert tells it."""

    run_id: str | None
    trigger: str
    result: str
    counts: Mapping[str, int]
    error: BaseException | None = None
    witness_failures: int = 0


def run_alert(end: RunEnd) -> Alert | None:
    """The alert a run's result calls for, or None (ok, declined)."""
    reason = getattr(end.error, "reason", None)
    # A check that failed for want of the API (no reason code) is a failure, not a refusal.
    refused = reason is not None or isinstance(end.error, Refused) or end.error is None
    if end.result == "refused" and refused:
        code = reason or "refused"
        return Alert(f"run:refused:{code}", f"run refused ({code})", _body(end, code))
    if end.result == "halted":
        return Alert("run:halted", "run halted", _body(end, reason))
    if end.result in ("failed", "refused"):
        code = reason or "failure"
        return Alert(f"run:failed:{code}", f"run failed ({code})", _body(end, reason))
    return None


def _body(end: RunEnd, reason: str | None) -> str:
    lines = [f"run: {end.run_id or 'none recorded'} ({end.trigger})"]
    if reason:
        lines.append(f"reason: {reason}")
    if end.error is not None:
        message = end.error.message if isinstance(end.error, RetentionError) else str(end.error)
        lines.append(f"error: {message}")
        hint = getattr(end.error, "hint", None)
        if hint:
            lines.append(f"hint: {hint}")
    shown = [f"{end.counts[n]} {n}" for n in _SHOWN_COUNTS if end.counts.get(n)]
    lines.append("counts: " + (", ".join(shown) if shown else "nothing removed"))
    return "\n".join(lines)


def token_alert(settings: Settings, now: datetime) -> Alert | None:
    """An alert when the refresh token in use was obtained 25 days ago or more."""
    stored = TokenStore.in_state_dir(settings.state_dir).load()
    if stored is None or now - stored.obtained_at < TOKEN_AGE_ALERT:
        return None
    days = (now - stored.obtained_at).days
    return Alert(
        TOKEN_CONDITION,
        f"refresh token not renewed for {days} days",
        f"the refresh token in use was obtained {stored.obtained_at:%Y-%m-%d %H:%M} UTC"
        f" ({days} days ago); GoTo's lapse after about 30 days\n"
        "hint: run `retention auth login` to obtain a new one",
        "warning",
    )


def witness_alert(end: RunEnd) -> Alert:
    return Alert(
        WITNESS,
        "the witness did not take a checkpoint",
        f"run: {end.run_id or 'none recorded'}\n{end.witness_failures} checkpoint line(s) the"
        " witness command (RETENTION_CHECKPOINT_COMMAND) failed to take\n"
        "hint: see the log for its exit status; the record itself is intact",
    )


async def run_ended(
    settings: Settings, db: Database, end: RunEnd, clock: Callable[[], datetime]
) -> None:
    """Alert what this run's end calls for, clear what it shows is over; never raises."""
    if (
        isinstance(end.error, asyncio.CancelledError | KeyboardInterrupt)
        or end.result == "declined"
    ):
        return
    try:
        now = clock()
        found = [a for a in (run_alert(end), token_alert(settings, now)) if a is not None]
        gone = [] if found and found[0].condition.startswith(RUN_CONDITIONS) else [RUN_CONDITIONS]
        if end.witness_failures:
            found.append(witness_alert(end))
        elif end.run_id is not None:
            gone.append(WITNESS)
        if not any(a.condition == TOKEN_CONDITION for a in found):
            gone.append(TOKEN_CONDITION)
        await settle(settings, db, now, found=found, gone=gone, note=_cleared_note(end))
    except Exception as exc:  # alerting must never change how a run ends
        log.warning("alerts could not be sent", error=f"{type(exc).__name__}: {exc}")


def _cleared_note(end: RunEnd) -> str:
    return f"run {end.run_id} ({end.trigger}) ended {end.result}"


async def refused_at_opening(
    settings: Settings,
    db: Database,
    error: RetentionError,
    *,
    trigger: str,
    clock: Callable[[], datetime],
) -> None:
    """A check that guards the record refused the run before it was opened (no run id)."""
    result = "refused" if error.reason else "failed"
    await run_ended(settings, db, RunEnd(None, trigger, result, {}, error), clock)
