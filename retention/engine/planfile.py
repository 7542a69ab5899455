"""A plan file read back, and why it must not be applied: each reason with its code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from retention.engine.planitem import PLAN_FORMAT, PlanItem, plan_hash
from retention.errors import InvalidInput
from retention.times import parse_stored_time
from retention.urls import without_userinfo

DEFAULT_MAX_CLOCK_SKEW = timedelta(seconds=300)
# One reason a plan is refused: its reason code (DECISIONS.md) and a sentence for people.
PlanRefusal = tuple[str, str]


@dataclass(frozen=True)
class LoadedPlan:
    """A plan file as read back: its document, its items and where it came from."""

    path: str
    document: Mapping[str, Any]
    items: list[PlanItem]

    @property
    def plan_id(self) -> str:
        return str(self.document["plan_id"])

    @property
    def recorded_hash(self) -> str:
        return str(self.document.get("plan_hash", ""))

    @property
    def as_of(self) -> datetime:
        """The time the plan decided as of (plans before `as_of` existed: their creation)."""
        return parse_stored_time(str(self.document.get("as_of") or self.created_at))

    @property
    def created_at(self) -> datetime:
        return parse_stored_time(str(self.document["created_at"]))

    @property
    def account_key(self) -> str | None:
        """The account the plan was made for; None in plans made before it was recorded."""
        value = self.document.get("account_key")
        return None if value is None else str(value)

    @property
    def api_base_url(self) -> str | None:
        value = self.document.get("api_base_url")
        return None if value is None else str(value)

    @property
    def refused(self) -> list[Mapping[str, Any]]:
        """The policies the plan refused on their own (cap or unknown name), as it names them."""
        found = self.document.get("refused")
        if isinstance(found, list):
            return [entry for entry in found if isinstance(entry, Mapping)]
        # Plans made before `refused` was written name the policy and what refused it only.
        older = self.document.get("refused_policies") or []
        return [
            {**entry, "count": None, "cap": None} for entry in older if isinstance(entry, Mapping)
        ]

    def alteration(self) -> str | None:
        """Why the file is not as it was written (its content does not hash to its
        `plan_hash`); None when it is."""
        actual = plan_hash(self.document)
        if actual == self.recorded_hash:
            return None
        return (
            f"the plan file was altered: its content hashes to {actual[:16]}…, "
            f"not the {self.recorded_hash[:16] or '(missing)'}… it was written with"
        )

    @property
    def in_scope(self) -> dict[str, int]:
        """Sessions in each policy's scope when the plan was made (its caps' `max_percent` base)."""
        per_policy = self.document["summary"].get("per_policy", {})
        return {name: totals.get("in_scope", 0) for name, totals in per_policy.items()}


def load_plan_file(path: Path) -> LoadedPlan:
    """Read and parse the plan file at `path`; one that cannot be read is invalid input."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read plan file {path}: {exc.strerror}",
            hint="pass a file written by `retention plan --out FILE` (or a proposal in plans/)",
        ) from None
    return read_plan_file(str(path), text)


def read_plan_file(path: str, text: str) -> LoadedPlan:
    """Parse a plan file; a file that is not a readable plan is invalid input (exit 2)."""
    try:
        document = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{path}:{exc.lineno}:{exc.colno}: not a JSON plan file: {exc.msg}",
            hint="pass a file written by `retention plan --out FILE`",
        ) from None
    except ValueError as exc:  # a key twice, or NaN: what a reader sees is not what is parsed
        raise InvalidInput(
            f"{path}: not a plan file `retention plan` wrote: {exc}",
            hint="pass the file as `retention plan --out FILE` wrote it",
        ) from None
    if not isinstance(document, dict) or document.get("format") != PLAN_FORMAT:
        raise InvalidInput(
            f"{path}: not a plan file (format is not {PLAN_FORMAT})",
            hint="pass a file written by `retention plan --out FILE`",
        )
    try:
        items = [PlanItem.from_json(item) for item in document["items"]]
        parse_stored_time(str(document["created_at"]))
        if document.get("as_of") is not None:
            parse_stored_time(str(document["as_of"]))
        str(document["plan_id"])
        str(document["policies_digest"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{path}: plan file is missing or has a malformed field: {exc}",
            hint="regenerate the plan with `retention plan --out FILE`",
        ) from None
    return LoadedPlan(path=path, document=document, items=items)


def plan_refusals(
    plan: LoadedPlan,
    *,
    known_hash: str | None,
    policies_digest: str,
    policy_hashes: Mapping[str, str] | None = None,
    now: datetime,
    max_age: timedelta,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
    account_key: str | None = None,
    api_base_url: str | None = None,
    applied_by: str | None = None,
) -> list[PlanRefusal]:
    """Why this plan must not be applied, as (code, text): altered or unknown or made under
    other policies (`changed_plan`), stale (`stale_plan`), a preview (`preview_plan`), for
    another account (`other_account`), applied already (`applied_before`)."""
    reasons: list[PlanRefusal] = []
    actual = plan_hash(plan.document)
    altered = plan.alteration()
    if altered is not None:
        reasons.append(("changed_plan", altered))
    elif known_hash is None:
        reasons.append(
            ("changed_plan", f"plan {plan.plan_id} was not made by this service's state directory")
        )
    elif known_hash != actual:
        reasons.append(
            (
                "changed_plan",
                f"plan {plan.plan_id} does not match the plan recorded when it was made",
            )
        )
    recorded = plan.document.get("policies")
    if policy_hashes is not None and isinstance(recorded, Mapping) and recorded:
        # Bound to the policies' content: a hold, a comment or a reordering changes nothing.
        changed = sorted(
            name
            for name in set(recorded) | set(policy_hashes)
            if recorded.get(name) != policy_hashes.get(name)
        )
        if changed:
            reasons.append(
                (
                    "changed_plan",
                    f"the policies changed since the plan was made: {', '.join(changed)}",
                )
            )
    elif plan.document.get("policies_digest") != policies_digest:
        reasons.append(
            (
                "changed_plan",
                "the policy and hold files changed since the plan was made "
                f"(digest {str(plan.document.get('policies_digest'))[:16]}… then, "
                f"{policies_digest[:16]}… now)",
            )
        )
    if now - plan.created_at > max_age:
        hours = (now - plan.created_at).total_seconds() / 3600
        reasons.append(
            (
                "stale_plan",
                f"the plan is {hours:.1f} hours old, over the maximum of "
                f"{max_age.total_seconds() / 3600:g} hours",
            )
        )
    if plan.as_of > now + max_clock_skew:
        reasons.append(
            (
                "preview_plan",
                f"the plan is a preview: it decided as of {_shown(plan.as_of)}, later than now "
                f"({_shown(now)}); only a plan as of now can be applied",
            )
        )
    reasons.extend(_account_refusals(plan, account_key, api_base_url))
    if applied_by:
        reasons.append(
            ("applied_before", f"plan {plan.plan_id} was already applied by {applied_by}")
        )
    return reasons


def _account_refusals(
    plan: LoadedPlan, account_key: str | None, api_base_url: str | None
) -> list[PlanRefusal]:
    """A plan recording an account or base URL other than the current ones is refused."""
    reasons: list[PlanRefusal] = []
    if account_key is not None and plan.account_key is not None and plan.account_key != account_key:
        reasons.append(
            (
                "other_account",
                f"the plan was made for account {plan.account_key}, this is account {account_key}",
            )
        )
    # Without a user part: a plan an older version made with credentials in the URL is bound
    # to the same base URL, and the credential is never repeated.
    recorded_url = None if plan.api_base_url is None else without_userinfo(plan.api_base_url)
    if (
        api_base_url is not None
        and recorded_url is not None
        and recorded_url.rstrip("/") != api_base_url.rstrip("/")
    ):
        reasons.append(
            (
                "other_account",
                f"the plan was made against {recorded_url}, this service uses {api_base_url}",
            )
        )
    return reasons


def _shown(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
