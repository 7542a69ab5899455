"""The admission step's inputs as the state database holds them now, and the explainer built on
them: one reading for every route, `retention explain` and the console.

    names the account lacks ► notices sent ► holds' kept coverage ► postponements ► Admission
"""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database

from retention.engine.admission import Admission, admit
from retention.engine.awaiting import awaiting_notice
from retention.engine.coverage import kept_coverage
from retention.engine.explain import Explainer, NoticeCheck
from retention.engine.inventory import iter_sessions
from retention.engine.overdue import first_loads
from retention.engine.policy_checks import known_names
from retention.engine.postponements import postponed_now
from retention.engine.records import SessionRecord
from retention.engine.state import noticed_keys
from retention.policy import PolicySet
from retention.policy.names import unknown_names
from retention.settings import Settings


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
        first_loaded=first_loads(db),
        postponed=postponed_now(db),
    )


def explainer_for(
    db: Database, policy_set: PolicySet, settings: Settings, as_of: datetime, now: datetime
) -> tuple[Explainer, dict[str, str]]:
    """The explainer of the inventory's sessions as of `as_of`, and the policies the admission
    step refuses on their own over the whole inventory (as `plan --offline` runs it)."""
    admission = admission_for(db, policy_set, settings, as_of)
    refused = admit(lambda: iter_sessions(db), admission, plan_id="explain", created_at=now).refused
    explainer = Explainer(
        policy_set,
        as_of,
        _notice_check(db, policy_set, settings, as_of),
        refused=refused,
        kept=admission.kept,
        postponed=admission.postponed,
    )
    return explainer, refused


def _notice_check(
    db: Database, policy_set: PolicySet, settings: Settings, as_of: datetime
) -> NoticeCheck | None:
    """`notice: required` as plan applies it: the notices the state database recorded."""
    if settings.owner_notice_days == 0:
        return None
    policies = {policy.name: policy for policy in policy_set.policies}
    noticed = noticed_keys(db)
    days = settings.owner_notice_days

    def check(session: SessionRecord, action: str, rule: str) -> datetime | None:
        notice = noticed.get((session.session_id, action))
        return awaiting_notice(policies[rule], notice, days, as_of)

    return check
