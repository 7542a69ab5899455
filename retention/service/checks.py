"""The preflight checks every run makes, in order: the record, the account and its clock, holds.

1. `audit_verified` (guards the record): every row rehashed (one-off `run` and `apply`, and
   the daemon's start-up), or, for the daemon's scheduled runs, the rows since the head that
   daemon itself last verified (`RecordWatch`); the checkpoints and their signatures, the
   head the service itself last sealed, and the written head (the record ends where the
   service's last commit left it, `audit/head.py`), either way.
2. `account_and_clock`: a token is obtained (or the one an earlier run kept is used, and the
   groups are read for the API's `Date`); the host clock is compared with the API's `Date`
   (beyond `RETENTION_MAX_CLOCK_SKEW` nothing is removed); the token answer's account and the
   base URL must be the ones this state directory was first used with.
3. `hold_names`: every organizer and group a legal hold names exists in the account now.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from retention.audit.head import WrittenHead
from retention.audit.preflight import AuditUnverified, check_record
from retention.engine.state import bind_account, bound_account
from retention.errors import Refused, RuntimeFailure
from retention.goto.client import GoToClient
from retention.goto.errors import ApiError
from retention.policy.names import check_hold_names
from retention.service.session import Check, Opening


def audit_verified(opening: Opening) -> None:
    """Every row of the record rehashes and chains, and the checkpoints vouch for it."""
    check_record(opening.settings, opening.db, full=True)


@dataclass
class RecordWatch:
    """What one process verified of the record: the daemon's runs check only what came since.

    The first check (the daemon's start-up) rehashes every row; each later one, the rows after
    the head the previous check reached. After a failure the next check is full again, and
    `ok` stays False until one passes: the daemon refuses until the record verifies.
    """

    verified: WrittenHead | None = None
    ok: bool | None = None

    def __call__(self, opening: Opening) -> None:
        since = self.verified
        try:
            done = check_record(opening.settings, opening.db, full=since is None, since=since)
        except AuditUnverified:
            self.verified, self.ok = None, False
            raise
        self.verified, self.ok = done.head, True


def _shown(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


async def account_and_clock(opening: Opening) -> None:
    """The API's clock agrees with the host's, and the account is the one this state is for."""
    api = opening.api
    if api is None:
        raise RuntimeFailure("no API client for the run's account check")
    await api.auth.access_token()
    if api.clock_skew_seconds() is None:
        await _read_api_date(opening, api)
    settings = opening.settings
    skew = api.clock_skew_seconds()
    if skew is None:
        raise Refused(
            "the API's answers carry no Date header: the host clock cannot be checked, so "
            "nothing is removed",
            hint="check RETENTION_API_BASE_URL and any proxy in between",
            reason="clock_skew",
        )
    if abs(skew) > settings.max_clock_skew:
        host = opening.clock()
        server = host - timedelta(seconds=skew)
        raise Refused(
            f"the host clock reads {_shown(host)} but the API's Date says {_shown(server)} "
            f"({skew:+.0f} s, over RETENTION_MAX_CLOCK_SKEW={settings.max_clock_skew:g} s); "
            "nothing was removed",
            hint="set the host's time right (NTP, timedatectl), then run again",
            reason="clock_skew",
        )
    account = api.account_key
    if account is None:
        raise Refused(
            "the token answer names no account_key: the account cannot be checked, so "
            "nothing is removed",
            hint="check RETENTION_TOKEN_URL",
            reason="other_account",
        )
    bound = bound_account(opening.db)
    if bound is None:
        bind_account(opening.db, settings.api_base_url, account, opening.clock())
        return
    if bound != (settings.api_base_url, account):
        raise Refused(
            f"this state directory belongs to account {bound[1]} at {bound[0]}, but the "
            f"settings reach account {account} at {settings.api_base_url}; nothing was removed",
            hint="point RETENTION_STATE_DIR at this account's own state directory (one per "
            "account), or fix RETENTION_API_BASE_URL and the credentials",
            reason="other_account",
        )


async def _read_api_date(opening: Opening, api: GoToClient) -> None:
    """A token an earlier run kept asked the token endpoint nothing, so no `Date` came yet.

    For this state's own account, one small call (the groups) brings the API's; should it
    fail, or the kept token name another account or base URL, a refresh brings the token
    endpoint's (and the account it answers for now), as in a run without a kept token.
    """
    if bound_account(opening.db) == (opening.settings.api_base_url, api.account_key):
        with contextlib.suppress(ApiError):
            await api.groups()
    if api.clock_skew_seconds() is None:
        await api.auth.refresh()


async def hold_names(opening: Opening) -> None:
    """Every organizer and group a hold names is in the account: a typo never shrinks a hold."""
    api = opening.api
    if api is None or not any(hold.scope is not None for hold in opening.policy_set.holds):
        return
    organizers = (await api.organizers()).items
    groups = (await api.groups()).items
    check_hold_names(
        opening.policy_set,
        [(o.organizer_key, o.email) for o in organizers if o.email],
        [(g.group_key, g.group_name) for g in groups if g.group_name],
    )


def preflight(watch: RecordWatch | None = None) -> tuple[Check, ...]:
    """Every run's checks, in order; with `watch`, the record check is incremental after its
    first (the daemon), else full each time (one-off commands)."""
    record = audit_verified if watch is None else watch
    return (
        Check("audit record verified", record, guards_audit=True),
        Check("account and clock", account_and_clock),
        Check("hold names", hold_names),
    )


PREFLIGHT = preflight()
