"""`retention daemon`: the long-running service systemd starts (Type=notify)."""

from __future__ import annotations

import asyncio
import sys

import structlog

from retention.cli.app import cli
from retention.errors import RetentionError
from retention.service.daemon import Daemon
from retention.service.logging import configure_logging, register_settings_secrets
from retention.service.notify import Notifier
from retention.settings import load_settings


def _serve() -> RetentionError | None:
    try:
        settings = load_settings()
        register_settings_secrets(settings)
        asyncio.run(Daemon(settings, Notifier.from_environ()).serve())
    except RetentionError as exc:
        return exc
    return None


@cli.command("daemon")
def daemon_command() -> None:
    """Run the policies on their schedules until stopped (SIGTERM); SIGHUP reloads them.

    Logs are JSON lines on standard output (journald keeps them); metrics and /healthz are
    served on RETENTION_METRICS_ADDRESS. Under systemd, it reports READY=1 once settings,
    policies, databases and the token were checked.
    """
    configure_logging(stream=sys.stdout)
    failure = _serve()
    if failure is not None:
        # In the journal too, not only on stderr: the daemon's log is what operators read.
        structlog.get_logger("retention.daemon").error(
            "daemon failed", error=failure.message, hint=failure.hint, exit_code=failure.exit_code
        )
        raise failure
