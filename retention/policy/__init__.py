"""What compliance writes: the policy and hold language, its loading and validation."""

from retention.policy.durations import Duration, parse_duration
from retention.policy.load import Location, PolicySet, SourceFile, load_policy_set
from retention.policy.models import Hold, HoldScope, Limits, Match, Policy, Scope, json_schema
from retention.policy.problems import PolicyError, Problem

__all__ = [
    "Duration",
    "Hold",
    "HoldScope",
    "Limits",
    "Location",
    "Match",
    "Policy",
    "PolicyError",
    "PolicySet",
    "Problem",
    "Scope",
    "SourceFile",
    "json_schema",
    "load_policy_set",
    "parse_duration",
]
