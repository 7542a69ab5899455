"""Lifting a postponement: an approver signs it with a passkey; the state database keeps who and
when. The one write the console makes to the state database, under the state directory's lock
(a run in flight holds it: the approver is asked to try again)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retention.canonical import canonical_hash
from retention.console.decisions import options_for, verified
from retention.engine.postponements import lift, postponed_now
from retention.errors import InvalidInput
from retention.service.statedir import LockWait, locked, read_only
from retention.settings import Settings

# How long a lift waits for a run in flight to let go of the state directory.
LOCK_WAIT_SECONDS = 5.0


def lift_hash(session_id: str, action: str) -> str:
    """What an approver signs to lift the postponement of one removal."""
    return canonical_hash({"lift": {"sessionId": session_id, "action": action}})


def _removal(posted: Mapping[str, Any]) -> tuple[str, str]:
    session_id, action = str(posted.get("sessionId", "")), str(posted.get("action", ""))
    if not session_id.isdigit() or not action:
        raise InvalidInput("name the postponed removal: sessionId and action", hint="reload")
    return session_id, action


def postponements(settings: Settings) -> list[dict[str, str]]:
    """The postponements in force or past, not lifted, as the overview lists them."""
    if not settings.state_db.is_file():
        return []
    try:
        with read_only(settings, "list postponements from") as db:
            found = postponed_now(db)
    except InvalidInput:
        return []
    return [
        {
            "sessionId": str(session_id),
            "action": action,
            "until": f"{entry.until:%Y-%m-%d}",
            "by": entry.by,
            "reason": entry.reason,
        }
        for (session_id, action), entry in sorted(found.items())
    ]


def lift_challenge(
    settings: Settings, posted: Mapping[str, Any], identity: str, now: datetime
) -> dict[str, Any]:
    session_id, action = _removal(posted)
    issued_at, options = options_for(settings, lift_hash(session_id, action), identity, now)
    return {"sessionId": session_id, "action": action, "issued_at": issued_at, "options": options}


async def lift_signed(
    settings: Settings, posted: Mapping[str, Any], identity: str, now: datetime
) -> bool:
    """Lift the postponement once the assertion verifies; whether there was one to lift."""
    session_id, action = _removal(posted)
    verified(settings, posted, identity, lift_hash(session_id, action), now)
    async with locked(
        settings, command="retention console (lift)", wait=LockWait(LOCK_WAIT_SECONDS)
    ) as db:
        return lift(db, session_id, action, identity, now)
