"""Owner notices in a run: plan now and N days ahead, tell each organizer once, record it.

Mail goes first; an organizer's removals are recorded as noticed (state database) and a
`notice_sent` event written (session ids and counts, never an address) only once the server
took the message. A mail server that fails is logged and alerted, and never fails the run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog
from sqlite_utils import Database

from retention.alerts import mail
from retention.alerts.conditions import Alert, settle
from retention.alerts.notices import (
    OwnerNotice,
    owner_notices,
    render,
    to_notice,
)
from retention.engine.awaiting import NoticeGate, hold_for_notice, notice_gate
from retention.engine.plan import Plan
from retention.engine.state import noticed_keys
from retention.errors import RetentionError
from retention.policy import PolicySet
from retention.settings import Settings

if TYPE_CHECKING:
    from retention.service.session import Session

log = structlog.get_logger(__name__)

# make_plan(db, policy_set, as_of=..., awaiting=...): the plan `retention plan --as-of` would
# show (`Pipeline.make_plan`); with `awaiting` false, what the policies alone call for: removals
# awaiting notice stay items and no cap is counted (a cap refuses a run, it does not postpone
# a removal: its organizer is told all the same).
MakePlan = Callable[..., Plan]
NOTICES_FAILED = "notices"


def awaiting_notice(plan: Plan, policy_set: PolicySet, db: Database, settings: Settings) -> Plan:
    """The plan less the removals still awaiting notice (moved to `blocked`, `by: "notice"`)."""
    return hold_for_notice(plan, policy_set, noticed_keys(db), settings.owner_notice_days)


def gate(db: Database, policy_set: PolicySet, settings: Settings) -> NoticeGate:
    """The check at send time that an item's organizer was told in time."""
    return notice_gate(policy_set, noticed_keys(db), settings.owner_notice_days)


def due_notices(
    db: Database, policy_set: PolicySet, days: int, make_plan: MakePlan, now: datetime
) -> list[OwnerNotice]:
    """Each organizer's removals that become due within `days`, not yet noticed."""
    today = make_plan(db, policy_set, as_of=now, awaiting=True)
    ahead = make_plan(db, policy_set, as_of=now + timedelta(days=days), awaiting=False)
    items = to_notice(today, ahead, noticed_keys(db))
    return owner_notices(db, items, policy_set, now, days)


async def send_owner_notices(session: Session, make_plan: MakePlan) -> int:
    """Send the notices due now; how many organizers were told. Never raises."""
    settings = session.settings
    if settings.owner_notice_days == 0:
        return 0
    if not settings.smtp_url:
        log.warning("owner notices are on but RETENTION_SMTP_URL is not set: none sent")
        return 0
    now = session.clock()
    try:
        due = due_notices(
            session.db, session.policy_set, settings.owner_notice_days, make_plan, now
        )
        notices = [n for n in due if n.email]
        if not notices:
            return 0
        mails = [mail.message(settings, str(n.email), *render(n, settings)) for n in notices]
        accepted = await asyncio.to_thread(mail.send, settings, mails)
    except RetentionError as exc:
        log.warning("owner notices not sent", error=exc.message)
        failed = Alert(NOTICES_FAILED, "owner notices not sent", f"{exc.message}\nhint: {exc.hint}")
        await settle(settings, session.db, now, found=[failed])
        return 0
    told = 0
    for notice, ok in zip(notices, accepted, strict=True):
        if not ok:
            log.warning("owner notice refused by the mail server", organizer=notice.organizer_key)
            continue
        _record(session, notice, now)
        told += 1
    log.info("owner notices sent", organizers=told, removals=sum(len(n.lines) for n in notices))
    await settle(settings, session.db, now, gone=[NOTICES_FAILED])
    return told


def _record(session: Session, notice: OwnerNotice, now: datetime) -> None:
    subjects = {line.session_id: line.subject for line in notice.lines}
    session.audit.notice_sent(
        run_id=session.run_id,
        organizer_key=notice.organizer_key,
        sessions=subjects,
        counts=notice.counts,
    )
    with session.db.atomic():
        for line in notice.lines:
            session.db.execute(
                "INSERT OR IGNORE INTO notices_sent (session_id, action, organizer_key, policy,"
                " due_at, sent_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    str(line.session_id),
                    line.action,
                    str(notice.organizer_key),
                    line.policy,
                    line.due.isoformat(),
                    now.isoformat(),
                    session.run_id,
                ],
            )
