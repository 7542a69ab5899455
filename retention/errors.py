"""The exception tree every layer raises from, and the exit code each kind maps to.

RetentionError                      root; carries a message and a hint for the user
├── InvalidInput (exit 2)           bad settings, policy files, plan files, arguments
│   ├── SettingsError
│   └── PolicyError                 carries every problem found, each with FILE:LINE:COL
├── Refused (exit 3)                a safety cap, a changed plan or a stale plan stopped a run
└── RuntimeFailure (exit 1)         the API, the disk or the audit record failed at run time
    ├── ApiError                    (goto/) method, path, status, a short body excerpt
    └── AuditError                  (audit/) the record refused or could not store an event
"""

from __future__ import annotations


class RetentionError(Exception):
    """Root of every error the service reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

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
