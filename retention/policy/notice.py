"""`notice: required` needs owner notices: with RETENTION_OWNER_NOTICE_DAYS=0 a set is invalid."""

from __future__ import annotations

from retention.policy.load import PolicySet
from retention.policy.problems import PolicyError, Problem


def notice_problems(policy_set: PolicySet, notice_days: int) -> list[Problem]:
    """One error per `notice: required` policy when notices are off."""
    if notice_days > 0:
        return []
    return [
        policy_set.locate("policy", policy.name).problem(
            ("notice",),
            f"policy {policy.name!r} requires notice, but owner notices are off"
            " (RETENTION_OWNER_NOTICE_DAYS=0): it could never remove anything",
            "set RETENTION_OWNER_NOTICE_DAYS (e.g. 7) and RETENTION_SMTP_URL, or remove"
            " notice: required",
        )
        for policy in policy_set.policies
        if policy.notice == "required"
    ]


def check_notice_days(policy_set: PolicySet, notice_days: int) -> None:
    """PolicyError (exit 2) naming each `notice: required` policy when notices are off."""
    problems = notice_problems(policy_set, notice_days)
    if problems:
        raise PolicyError(problems)
