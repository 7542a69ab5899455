"""Planning without applying: `retention plan`, scanning first or offline, and a policy change's
two plans on one inventory.

    lock ► state db ► (online: token, clock and account check, scan) ► hold names ► decide

Offline, nothing is sent to the API: the plan decides on the last complete scan's inventory and
states its age; the lock and the state database are used as online. The only writes are local
and reversible: the plan's hash in the state database (with --out), never the audit record.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from retention.audit.log import AuditLog
from retention.audit.store import connect_reader
from retention.engine.plan import Plan, SubjectForm, limit_plan
from retention.engine.policy_checks import known_names
from retention.engine.state import account_of, record_plan
from retention.errors import InvalidInput
from retention.policy import PolicySet
from retention.policy.names import check_hold_names
from retention.service.checks import account_and_clock
from retention.service.context import RunContext, load_policies, make_plan, refresh
from retention.service.context import client as client_of
from retention.service.record import CHECKPOINT_FILE
from retention.service.session import Opening
from retention.service.statedir import NO_INVENTORY_HINT, last_scan_time, locked
from retention.settings import Settings


@dataclass(frozen=True)
class Inventory:
    """The inventory a plan decides on: its database, account, when its scan finished."""

    db: Database
    account_key: str | None
    scanned_at: datetime | None
    offline: bool


@contextlib.contextmanager
def audit_subject(settings: Settings) -> Iterator[SubjectForm]:
    """The subject as the audit record stores it (RETENTION_AUDIT_SUBJECT), read-only.

    `hash` is the record's own keyed hash (its salt), so a plan's subject is the one its
    removals' rows will carry; before the record exists (no run yet) it is unknown (None).
    """
    path = settings.audit_db
    if not path.is_file():
        mode = settings.audit_subject
        yield (lambda subject: subject) if mode == "keep" else (lambda _subject: None)
        return
    conn = connect_reader(path)
    try:
        record = AuditLog(
            conn,
            path=path,
            subject_mode=settings.audit_subject,
            signing_key=None,
            checkpoint_path=path.parent / CHECKPOINT_FILE,
            clock=lambda: datetime.now(UTC),  # never writes: the clock is not read
        )
        yield record.subject_value
    finally:
        conn.close()


@contextlib.asynccontextmanager
async def _inventory(
    ctx: RunContext, policy_sets: list[PolicySet], *, offline: bool
) -> AsyncIterator[Inventory]:
    async with locked(ctx.settings, command="retention plan", wait=ctx.lock, stop=ctx.stop) as db:
        if offline and last_scan_time(db) is None:
            raise InvalidInput(
                f"no inventory to plan offline on: no scan of {ctx.settings.state_db} has "
                "completed",
                hint=NO_INVENTORY_HINT,
            )
        account = await _read(ctx, db, policy_sets[0], offline=offline)
        for policy_set in policy_sets:
            # A hold shrunk by a misspelt name must not pass for one in force, even here.
            check_hold_names(policy_set, *known_names(db))
        yield Inventory(db, account, last_scan_time(db), offline)


async def _read(
    ctx: RunContext, db: Database, policy_set: PolicySet, *, offline: bool
) -> str | None:
    """Bring the inventory up to date (online) or check there is one (offline); its account."""
    if offline:
        return account_of(db)
    async with client_of(ctx) as client:
        # The clock and the account are checked (and recorded on first use) first.
        await account_and_clock(Opening(ctx.settings, ctx.clock, db, policy_set, client))
        await refresh(ctx, client, db)
    return client.account_key


def _plan(
    ctx: RunContext,
    inventory: Inventory,
    policy_set: PolicySet,
    subject: SubjectForm,
    *,
    as_of: datetime,
    selected: list[str] | None,
) -> Plan:
    return make_plan(
        ctx,
        inventory.db,
        policy_set,
        as_of=as_of,
        selected=selected,
        account_key=inventory.account_key,  # the account its facts were read from
        subject=subject,
        offline=inventory.offline,
        inventory_at=inventory.scanned_at,
    )


async def preview(
    ctx: RunContext,
    *,
    as_of: datetime | None,
    selected: list[str] | None,
    record: bool,
    limit: int | None = None,
    offline: bool = False,
) -> Plan:
    """`retention plan`: read the inventory, decide, and (with --out) record the plan."""
    policy_set = load_policies(ctx)
    async with _inventory(ctx, [policy_set], offline=offline) as inventory:
        with audit_subject(ctx.settings) as subject:
            plan = _plan(
                ctx,
                inventory,
                policy_set,
                subject,
                as_of=as_of or ctx.clock(),
                selected=selected,
            )
        plan = limit_plan(plan, limit)
        if record:
            record_plan(inventory.db, plan.plan_id, plan.document()["plan_hash"], plan.created_at)
    return plan


async def compare(
    ctx: RunContext,
    base: PolicySet,
    *,
    as_of: datetime | None,
    selected: list[str] | None,
    offline: bool = False,
) -> tuple[Plan, Plan]:
    """The plans of `base` and of the policies in force, on one inventory and as-of time.

    Both plans hold every policy's removals: a policy selected that only one folder defines
    is one the change adds or drops, so the comparison (engine/compare.py) selects.
    """
    change = load_policies(ctx)
    _check_selected(selected, base, change)
    async with _inventory(ctx, [change, base], offline=offline) as inventory:
        moment = as_of or ctx.clock()
        with audit_subject(ctx.settings) as subject:
            plans = [
                _plan(
                    ctx,
                    inventory,
                    policy_set,
                    subject,
                    as_of=moment,
                    selected=None,  # the comparison keeps the selected policies' entries
                )
                for policy_set in (base, change)
            ]
    return plans[0], plans[1]


def _check_selected(selected: list[str] | None, *sets: PolicySet) -> None:
    """A --policy that neither folder defines is a mistake; one only the other has, a change."""
    names = {policy.name for policy_set in sets for policy in policy_set.policies}
    unknown = sorted(set(selected or ()) - names)
    if unknown:
        raise InvalidInput(
            f"no such policy in either folder: {', '.join(unknown)}",
            hint="`retention validate DIR` lists a folder's policies",
        )
