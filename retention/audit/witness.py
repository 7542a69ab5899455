"""The witness: a command outside the service's reach that receives each checkpoint line."""

from __future__ import annotations

import shlex
import subprocess

import structlog

from retention.audit.store import AuditInputError

WITNESS_TIMEOUT_S = 30.0
_log = structlog.get_logger("retention.audit")


def witness_argv(setting: str | None) -> list[str] | None:
    """RETENTION_CHECKPOINT_COMMAND as an argument list, split like a shell (never run by one)."""
    if setting is None or not setting.strip():
        return None
    try:
        return shlex.split(setting)
    except ValueError as exc:
        raise AuditInputError(
            f"checkpoint_command cannot be split into arguments: {exc}",
            hint="quote it as you would in a shell, e.g. logger -t goto-retention",
        ) from None


def send_to_witness(argv: list[str], line: bytes, *, timeout: float = WITNESS_TIMEOUT_S) -> bool:
    """Run the witness with the checkpoint's JSON line on stdin; False (and logged) if it fails.

    A witness that fails never stops a run: the checkpoint is already in the log and the file.
    """
    try:
        done = subprocess.run(  # noqa: S603 (an argument list from the operator, no shell)
            argv, input=line, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        _log.warning("audit_witness_failed", command=argv[0], error=f"timed out after {timeout} s")
        return False
    except OSError as exc:
        _log.warning("audit_witness_failed", command=argv[0], error=exc.strerror or str(exc))
        return False
    if done.returncode != 0:
        excerpt = done.stderr.decode("utf-8", "replace").strip()[:200]
        _log.warning(
            "audit_witness_failed", command=argv[0], exit_code=done.returncode, error=excerpt
        )
        return False
    return True
