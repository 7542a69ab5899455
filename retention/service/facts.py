"""The admission step's inputs as the state database holds them now, and keeping them current.

the organizer listing (read first by every route that can remove) ► holds' coverage brought
up to date (`hold_scope_left` recorded when it grows) ► names, notices, coverage ► Admission
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlite_utils import Database

from retention.engine import inventory
from retention.engine.admission import Admission
from retention.engine.coverage import ScopeLeft, kept_coverage, update_coverage
from retention.engine.policy_checks import known_names
from retention.engine.postponements import postponed_now
from retention.engine.state import noticed_keys
from retention.goto.client import GoToClient
from retention.policy import PolicySet
from retention.policy.names import unknown_names
from retention.settings import Settings

log = structlog.get_logger(__name__)


def admission_for(
    db: Database, policy_set: PolicySet, settings: Settings, as_of: datetime, *, caps: bool = True
) -> Admission:
    """Names the account lacks, notices sent, what each hold keeps and what approvers
    postponed, from the state db."""
    organizers, groups = known_names(db)
    names = unknown_names(policy_set, organizers, groups)
    unknown = {
        policy.name: by
        for policy in policy_set.policies
        if (by := names.blocked_by(policy.name)) is not None
    }
    return Admission(
        policy_set=policy_set,
        as_of=as_of,
        unknown=unknown,
        noticed=noticed_keys(db),
        notice_days=settings.owner_notice_days,
        kept=kept_coverage(db),
        caps=caps,
        postponed=postponed_now(db),
    )


async def read_listing(client: GoToClient, db: Database, now: datetime) -> None:
    """The account's organizers and groups as they are now, into the inventory."""
    organizers = await client.organizers()
    groups = await client.groups()
    inventory.store_directory(db, organizers.items, groups.items, now)


def keep_coverage(db: Database, policy_set: PolicySet, now: datetime) -> list[ScopeLeft]:
    """Bring the holds' coverage up to date; the organizers whose kept sessions grew."""
    grown = update_coverage(db, policy_set, now)
    for left in grown:
        log.warning(
            "a hold keeps sessions its scope no longer covers",
            hold=left.hold_id,
            organizer_key=left.organizer_key,
            sessions=left.sessions,
        )
    return grown
