"""Owner notices in a run: plan now and N days ahead, tell each organizer once, record it.

Mail goes first; an organizer's removals are recorded as noticed (state database) and a
`notice_sent` event written (session ids and counts, never an address) only once the server
took the message. A mail server that fails is logged and alerted, and never fails the run. An
organizer whose address no message may go to (a line break, no `@`, over-long) is that
organizer's problem: logged and alerted by organizer key (never the address), their removals
stay awaiting notice, and the other organizers' notices go out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
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
# show (`context.make_plan`); with `awaiting` false, what the policies alone call for: removals
# awaiting notice stay items and no cap is counted (a cap refuses a run, it does not postpone
# a removal: its organizer is told all the same).
MakePlan = Callable[..., Plan]
NOTICES_FAILED = "notices"
ADDRESSES_REFUSED = "notice_addresses"


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
        notices, mails, refused = _addressable([n for n in due if n.email], settings)
        await _settle_refused(session, now, refused)
        if not notices:
            return 0
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


NOTICE_UNSENT = "notice_unsent"


def unsent(db: Database, plan: Plan) -> int:
    """Removals the plan holds for a notice that never went out (none was recorded sent)."""
    noticed = noticed_keys(db)
    return sum(
        1
        for entry in plan.blocked
        if entry["by"] == "notice" and (int(entry["sessionId"]), entry["action"]) not in noticed
    )


async def settle_unsent(settings: Settings, db: Database, now: datetime, count: int) -> None:
    """One alert per repeat while removals wait on notices that could not be sent; resolved
    once a run has sent them."""
    if not count:
        await settle(settings, db, now, gone=[NOTICE_UNSENT], note="the notices went out")
        return
    found = Alert(
        NOTICE_UNSENT,
        "removals wait on owner notices that were not sent",
        f"{count} removal(s) under `notice: required` policies wait on an owner notice that "
        'could not be sent\nhint: set RETENTION_SMTP_URL (docs/deploy.md, "Owner notices") '
        "and check the mail server; `retention notify preview` shows the notices due",
    )
    await settle(settings, db, now, found=[found])


def _addressable(
    notices: list[OwnerNotice], settings: Settings
) -> tuple[list[OwnerNotice], list[EmailMessage], list[OwnerNotice]]:
    """The notices a message can go to, their messages, and the others (each one logged)."""
    kept: list[OwnerNotice] = []
    mails: list[EmailMessage] = []
    refused: list[OwnerNotice] = []
    for notice in notices:
        try:
            mails.append(mail.message(settings, str(notice.email), *render(notice, settings)))
        except mail.InvalidAddress as exc:
            log.warning(
                "owner notice not sent: invalid address",
                organizer=notice.organizer_key,
                problem=str(exc),
                removals=len(notice.lines),
            )
            refused.append(notice)
            continue
        kept.append(notice)
    return kept, mails, refused


async def _settle_refused(session: Session, now: datetime, refused: list[OwnerNotice]) -> None:
    """One alert naming the organizers (by key) whose address no notice can go to."""
    if not refused:
        await settle(session.settings, session.db, now, gone=[ADDRESSES_REFUSED])
        return
    keys = ", ".join(str(notice.organizer_key) for notice in refused)
    body = (
        f"no owner notice can be sent to organizer {keys}: the address in GoTo is invalid"
        " (a line break, no @, or over-long). Their removals wait for a notice; the other"
        " organizers' went out.\nhint: correct the organizer's email in GoTo; the next run"
        " sends the notice"
    )
    alert = Alert(ADDRESSES_REFUSED, "owner notices: invalid addresses", body)
    await settle(session.settings, session.db, now, found=[alert])


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
