"""Owner notices: which removals each organizer is told of, and the message from its template.

"Due within N days" is the plan at as-of now+N days less today's plan, both made by the same
planning as `retention plan` (`context.make_plan`): nothing is decided here. A removal is
noticed once. The message names the organizer's own sessions (date, subject as the API gave
it), what goes and when, the policy and its description, and whom to ask for a hold; never an
attendee.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlite_utils import Database

from retention.engine.plan import Plan
from retention.engine.planitem import PlanItem
from retention.errors import InvalidInput
from retention.policy import PolicySet
from retention.settings import Settings

TEMPLATE = "owner_notice.txt.j2"
WHAT_GOES = {
    "delete_recordings": "the recording",
    "delete_attendees": "the attendee list",
    "delete_session": "the whole session (with its recording and attendee list)",
}

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class NoticeLine:
    """One removal an organizer is told of."""

    session_id: int
    action: str
    started: datetime | None
    subject: str | None
    what: str
    due: datetime
    policy: str
    description: str


@dataclass(frozen=True)
class OwnerNotice:
    """One organizer's message: its address and the removals it lists, oldest session first."""

    organizer_key: int
    email: str | None
    lines: tuple[NoticeLine, ...]

    @property
    def counts(self) -> dict[str, int]:
        """Removals listed, by action."""
        found: dict[str, int] = defaultdict(int)
        for line in self.lines:
            found[line.action] += 1
        return dict(sorted(found.items()))


def to_notice(today: Plan, ahead: Plan, noticed: Iterable[tuple[int, str]]) -> list[PlanItem]:
    """The removals the plan ahead has that today's plan has not, less those noticed."""
    skip = {item.key for item in today.items} | set(noticed)
    return [item for item in ahead.items if item.key not in skip]


def owner_notices(
    db: Database,
    items: Iterable[PlanItem],
    policy_set: PolicySet,
    now: datetime,
    notice_days: int,
) -> list[OwnerNotice]:
    """The items grouped by organizer, with each session's subject and organizer's address."""
    policies = {policy.name: policy for policy in policy_set.policies}
    by_organizer: dict[int, list[NoticeLine]] = defaultdict(list)
    facts = _session_facts(db, {item.session_id for item in items})
    addresses = _addresses(db)
    for item in items:
        policy = policies[item.policy]
        subject, email = facts.get(item.session_id, (None, None))
        if email:
            addresses.setdefault(item.organizer_key, email)
        due = policy.after.due_at(item.end_time) if item.end_time is not None else now
        if policy.notice == "required":  # it goes no earlier than the notice days from now
            due = max(due, now + timedelta(days=notice_days))
        by_organizer[item.organizer_key].append(
            NoticeLine(
                session_id=item.session_id,
                action=item.action,
                started=item.start_time,
                subject=subject,
                what=WHAT_GOES.get(item.action, item.action),
                due=max(due, now),
                policy=policy.name,
                description=policy.description,
            )
        )
    return [
        OwnerNotice(key, addresses.get(key), tuple(sorted(lines, key=_by_start)))
        for key, lines in sorted(by_organizer.items())
    ]


def _by_start(line: NoticeLine) -> tuple[float, int, str]:
    start = line.started.timestamp() if line.started is not None else 0.0
    return (start, line.session_id, line.action)


def _session_facts(db: Database, ids: set[int]) -> dict[int, tuple[str | None, str | None]]:
    found: dict[int, tuple[str | None, str | None]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in db.query(
            f"SELECT session_id, subject, organizer_email FROM sessions"  # noqa: S608
            f" WHERE session_id IN ({marks})",
            [str(key) for key in chunk],
        ):
            found[int(row["session_id"])] = (row["subject"], row["organizer_email"])
    return found


def _addresses(db: Database) -> dict[int, str]:
    return {
        int(row["organizer_key"]): str(row["email"])
        for row in db.query("SELECT organizer_key, email FROM organizers WHERE email != ''")
    }


def environment(settings: Settings) -> tuple[jinja2.Environment, str]:
    """The Jinja2 environment and template name: the operator's file, else the shipped one."""
    import jinja2  # noqa: PLC0415  (loaded only when a notice is rendered)

    chosen = Path(settings.notice_template) if settings.notice_template else None
    if chosen is not None:
        if not chosen.is_file():
            raise InvalidInput(
                f"RETENTION_NOTICE_TEMPLATE names {chosen}, which is not a readable file",
                hint="point it at a Jinja2 template, or unset it to use the shipped one",
            )
        loader: jinja2.BaseLoader = jinja2.FileSystemLoader(str(chosen.parent))
        name = chosen.name
    else:
        loader = jinja2.PackageLoader("retention.alerts", "templates")
        name = TEMPLATE
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(["html", "htm", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env, name


def render(notice: OwnerNotice, settings: Settings) -> tuple[str, str]:
    """(mail subject, body): a first line `Subject: …` of the template gives the subject."""
    import jinja2  # noqa: PLC0415  (loaded only when a notice is rendered)

    env, name = environment(settings)
    try:
        text = env.get_template(name).render(
            organizer=notice.email or f"organizer {notice.organizer_key}",
            lines=notice.lines,
            counts=notice.counts,
            days=settings.owner_notice_days,
            contact=settings.notice_contact,
        )
    except jinja2.TemplateError as exc:
        raise InvalidInput(
            f"the owner notice template cannot be rendered: {exc}",
            hint="fix RETENTION_NOTICE_TEMPLATE (its variables: organizer, lines, counts,"
            " days, contact)",
        ) from None
    first, _, rest = text.partition("\n")
    if first.lower().startswith("subject:"):
        return first.split(":", 1)[1].strip(), rest.lstrip("\n")
    return "GoTo Meeting sessions to be removed", text


def by_organizer(notices: Iterable[OwnerNotice]) -> Mapping[int, OwnerNotice]:
    """The notices keyed by organizer."""
    return {notice.organizer_key: notice for notice in notices}
