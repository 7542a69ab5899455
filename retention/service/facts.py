"""Keeping the admission step's inputs current (engine/inputs.py reads them).

the organizer listing (read first by every route that can remove) ► holds' coverage brought
up to date (`hold_scope_left` recorded when it grows) ► names, notices, coverage ► Admission
"""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlite_utils import Database

from retention.engine import inventory
from retention.engine.coverage import ScopeLeft, update_coverage
from retention.engine.inputs import admission_for
from retention.goto.client import GoToClient
from retention.policy import PolicySet

__all__ = ["admission_for", "keep_coverage", "read_listing"]

log = structlog.get_logger(__name__)


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
