"""Alert conditions kept in the state database: sent when they begin, again at most once per
`RETENTION_NOTIFY_REPEAT` while they last, and once more, "resolved", when they clear.

`alert` and `resolve` are the seam every part of the service calls (a run's end, a proposal
awaiting approval, the token's age); they never raise for a delivery that fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlite_utils import Database

from retention.alerts.deliver import deliver, notify_urls
from retention.settings import Settings
from retention.times import parse_stored_time

log = structlog.get_logger(__name__)

TITLE_PREFIX = "goto-retention: "


@dataclass(frozen=True)
class Alert:
    """One condition's message: `condition` names it (`run:refused:cap`, `witness`)."""

    condition: str
    title: str
    body: str
    kind: str = "failure"


@dataclass(frozen=True)
class Message:
    """What goes out now."""

    title: str
    body: str
    kind: str


def raised(db: Database, alert: Alert, now: datetime, repeat: timedelta) -> Message | None:
    """The message for a condition in force now, or None while its repeat window lasts."""
    row = next(
        db.query(
            "SELECT last_sent, sent_count FROM alert_conditions WHERE condition = ?",
            [alert.condition],
        ),
        None,
    )
    with db.atomic():
        if row is None:
            db.execute(
                "INSERT INTO alert_conditions (condition, title, first_seen, last_sent,"
                " sent_count) VALUES (?, ?, ?, ?, 1)",
                [alert.condition, alert.title, now.isoformat(), now.isoformat()],
            )
            return Message(TITLE_PREFIX + alert.title, alert.body, alert.kind)
        if now - parse_stored_time(str(row["last_sent"])) < repeat:
            return None
        db.execute(
            "UPDATE alert_conditions SET last_sent = ?, sent_count = sent_count + 1"
            " WHERE condition = ?",
            [now.isoformat(), alert.condition],
        )
    count = int(row["sent_count"]) + 1
    return Message(f"{TITLE_PREFIX}{alert.title} (still, alert {count})", alert.body, alert.kind)


def cleared(
    db: Database, conditions: Sequence[str], note: str, keep: frozenset[str] = frozenset()
) -> list[Message]:
    """A "resolved" message for each condition in force that is named, or starts with a name
    ending in `:` (`run:` clears every run condition), but those in `keep`; they are forgotten."""
    found = [
        row
        for row in db.query("SELECT condition, title, first_seen FROM alert_conditions")
        if row["condition"] not in keep
        and any(_names(name, str(row["condition"])) for name in conditions)
    ]
    messages = []
    with db.atomic():
        for row in found:
            db.execute("DELETE FROM alert_conditions WHERE condition = ?", [row["condition"]])
            body = f"{note}\nin force since {row['first_seen']}".strip()
            messages.append(Message(f"{TITLE_PREFIX}resolved: {row['title']}", body, "success"))
    return messages


def _names(name: str, condition: str) -> bool:
    return condition.startswith(name) if name.endswith(":") else condition == name


def alert(settings: Settings, db: Database, found: Alert, *, now: datetime) -> bool:
    """Report a condition in force; sends it unless it went out within the repeat window.

    Returns whether a message went out (False too when no URL is set).
    """
    urls = notify_urls(settings)
    if not urls:
        return False
    message = raised(db, found, now, timedelta(seconds=settings.notify_repeat_seconds))
    if message is None:
        log.info("alert within its repeat window: not sent again", condition=found.condition)
        return False
    return deliver(urls, message.title, message.body, kind=message.kind) > 0


def resolve(settings: Settings, db: Database, conditions: Sequence[str], *, note: str = "") -> int:
    """Report conditions cleared: one "resolved" message for each that was in force."""
    urls = notify_urls(settings)
    if not urls:
        return 0
    messages = cleared(db, conditions, note)
    return sum(deliver(urls, m.title, m.body, kind=m.kind) for m in messages)


async def settle(
    settings: Settings,
    db: Database,
    now: datetime,
    *,
    found: Sequence[Alert] = (),
    gone: Sequence[str] = (),
    note: str = "",
) -> None:
    """`alert` each of `found` and `resolve` `gone`, delivering off the event loop.

    The state database is read and written here, on the caller's thread; only the sending
    (which may wait on a slow service) runs in a worker thread.
    """
    urls = notify_urls(settings)
    if not urls:
        return
    repeat = timedelta(seconds=settings.notify_repeat_seconds)
    messages = [m for a in found if (m := raised(db, a, now, repeat)) is not None]
    messages += cleared(db, gone, note, keep=frozenset(a.condition for a in found))
    for message in messages:
        await asyncio.to_thread(deliver, urls, message.title, message.body, kind=message.kind)
