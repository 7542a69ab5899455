"""Reminders to approvers: while a proposal waits, each approver who has not signed it is mailed
(the owner notices' SMTP settings) at most once per RETENTION_NOTIFY_REPEAT, with a link to its
page in the console. The operator's alerts stay as they are.

Plain values in: the proposals waiting, the approvers' addresses, the console's origin. Each
(proposal, approver) is a condition of `alert_conditions` (`reminder:PLAN_ID:ADDRESS`), so the
repeat window survives a restart; a proposal no longer waiting has its conditions forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

import structlog
from sqlite_utils import Database

from retention.alerts import mail
from retention.alerts.conditions import Alert, cleared, raised
from retention.errors import RetentionError
from retention.settings import Settings

log = structlog.get_logger(__name__)

REMINDER = "reminder:"


@dataclass(frozen=True)
class Waiting:
    """A proposal awaiting approvals: its plan id, file name, count, and who signed it."""

    plan_id: str
    name: str
    items: int
    have: int
    need: int
    signed: frozenset[str]


def link(settings: Settings, name: str) -> str:
    """The proposal's page, when the console has an origin."""
    origin = settings.console_origin.rstrip("/")
    return f"{origin}/proposals/{name}" if origin else ""


async def remind_approvers(
    settings: Settings,
    db: Database,
    now: datetime,
    waiting: Sequence[Waiting],
    approvers: Iterable[str],
) -> int:
    """Mail each approver (an address) who has not signed a waiting proposal, at most once per
    repeat; how many mails the server accepted. Never raises."""
    keep = {f"{REMINDER}{p.plan_id}:" for p in waiting}
    stale = [
        row["condition"]
        for row in db.query(
            "SELECT condition FROM alert_conditions WHERE condition LIKE ?", [f"{REMINDER}%"]
        )
        if not any(str(row["condition"]).startswith(prefix) for prefix in keep)
    ]
    cleared(db, stale, "the proposal no longer waits")
    if not settings.smtp_url or not waiting:
        return 0
    repeat = timedelta(seconds=settings.notify_repeat_seconds)
    addresses = sorted({a for a in approvers if mail.address_problem(a) is None})
    mails: list[EmailMessage] = []
    for proposal in waiting:
        for address in addresses:
            if address.casefold() in {s.casefold() for s in proposal.signed}:
                continue
            body = _body(settings, proposal)
            due = raised(
                db,
                Alert(f"{REMINDER}{proposal.plan_id}:{address}", "a plan awaits you", body),
                now,
                repeat,
            )
            if due is not None:
                subject = f"goto-retention: a plan awaits your approval ({proposal.name})"
                mails.append(mail.message(settings, address, subject, body))
    if not mails:
        return 0
    try:
        accepted = await asyncio.to_thread(mail.send, settings, mails)
    except RetentionError as exc:
        log.warning("approvers not reminded", error=exc.message)
        return 0
    log.info("approvers reminded", mails=sum(accepted))
    return sum(accepted)


def _body(settings: Settings, proposal: Waiting) -> str:
    page = link(settings, proposal.name)
    where = f"Review it in the console: {page}" if page else "Review it: retention plans"
    return (
        f"The proposal {proposal.name} ({proposal.items} removals) has {proposal.have} of the "
        f"{proposal.need} approvals it needs.\n\n{where}\n"
    )
