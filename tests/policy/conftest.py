"""Hypothesis profiles for the policy and decision tests (applied per test, not globally)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Tests pick this profile by name with @settings(settings.get_profile("policy")), so other
# areas' Hypothesis tests keep their own settings. `make test` tries 100 examples of each
# property; `make torture` sets RETENTION_HYPOTHESIS_EXAMPLES=2000.
settings.register_profile(
    "policy",
    max_examples=int(os.environ.get("RETENTION_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
