"""The exception tree every layer raises from, and the exit code each kind maps to.

RetentionError                      root; a message, a hint and a reason code for the user
├── InvalidInput (exit 2)           bad settings, policy files, plan files, arguments
│   ├── SettingsError
│   └── PolicyError                 carries every problem found, each with FILE:LINE:COL
├── Refused (exit 3)                a safety cap, a changed plan or a stale plan stopped a run
└── RuntimeFailure (exit 1)         the API, the disk or the audit record failed at run time
    ├── ApiError                    (goto/) method, path, status, a short body excerpt
    ├── AuditError                  (audit/) the record refused or could not store an event
    └── RemovalsInterrupted         a failure after removals went out, with what had gone
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

# Machine-readable reasons a run is refused: in `refused` events, /healthz, alerts and the
# report's `data-reason` (the message says the rest, for people).
ReasonCode = Literal[
    "cap",
    "global_cap",
    "clock_skew",
    "preview_plan",
    "changed_plan",
    "stale_plan",
    "applied_before",
    "other_account",
    "unknown_name",
    "audit_unverified",
    "approvals",
    "invalid_policies",
    "declined",
]


class RetentionError(Exception):
    """Root of every error the service reports to a user."""

    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, reason: ReasonCode | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.reason = reason

    def __str__(self) -> str:
        return self.message


class InvalidInput(RetentionError):
    """Input the user can fix: settings, policy files, plan files, command-line arguments."""

    exit_code = 2


class SettingsError(InvalidInput):
    """A setting is missing or invalid."""


class Refused(RetentionError):
    """A safety mechanism refused to act: caps, altered or stale plans, changed policies."""

    exit_code = 3


class RuntimeFailure(RetentionError):
    """Something failed while running: the API, the disk, the audit record."""

    exit_code = 1


class RemovalsInterrupted(RuntimeFailure):
    """A failure (the record refused a write, the disk filled) came after removals went out.

    `cause` is the failure itself (the CLI names it as it would alone); `went_out` says what
    the run had done by then, from its outcome counts.
    """

    def __init__(self, cause: Exception, outcomes: Mapping[str, int]) -> None:
        others = ", ".join(
            f"{outcomes[name]} {name}"
            for name in sorted(outcomes)
            if name != "deleted" and outcomes[name]
        )
        self.went_out = f"{outcomes.get('deleted', 0)} removal(s) had gone out before it" + (
            f" ({others})" if others else ""
        )
        super().__init__(
            f"{cause}; {self.went_out}",
            hint="each removal sent has its intent in the audit record; fix the cause (free"
            " space in RETENTION_STATE_DIR), then run again: the next run reconciles what"
            " has no outcome yet and goes on",
        )
        self.cause = cause
