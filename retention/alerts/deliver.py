"""Alerts out through Apprise: each URL on its own; an undeliverable one is logged and counted.

One setting (`RETENTION_NOTIFY`, or the credential `notify_urls`) reaches mail, chat and
webhooks. The URLs carry secrets (tokens, passwords): what in each is secret is registered for
masking before anything is logged, and only Apprise's privacy form of a URL is ever named.
"""

from __future__ import annotations

import functools
import threading
from types import ModuleType

import structlog

from retention.service.logging import register_urls
from retention.settings import Settings

log = structlog.get_logger(__name__)


@functools.cache
def _apprise() -> tuple[ModuleType, object]:
    """Apprise and the service's asset. Apprise loads every plugin when imported (a fifth of
    a second): a command or run without alert URLs never pays for it."""
    import apprise  # noqa: PLC0415  (see above)

    asset = apprise.AppriseAsset(
        app_id="goto-retention",
        app_desc="GoTo Meeting retention",
        app_url="https://github.com/goto-retention",
    )
    return apprise, asset


class FailureCount:
    """Alerts that could not be delivered in this process (the daemon's metric reads it)."""

    def __init__(self) -> None:
        self.total = 0
        self._lock = threading.Lock()

    def add(self) -> None:
        with self._lock:
            self.total += 1


FAILURES = FailureCount()


def notify_urls(settings: Settings) -> list[str]:
    """The Apprise URLs in force, what is secret in each registered; empty: alerts are off."""
    if settings.notify is None:
        return []
    return register_urls(settings.notify.get_secret_value())


def describe(url: str) -> str:
    """The URL as it may be shown: Apprise's privacy form, or its scheme alone."""
    apprise, asset = _apprise()
    service = apprise.Apprise.instantiate(url, asset=asset)
    if service is None:
        return url.split("://", 1)[0] + "://…"
    return str(service.url(privacy=True))


def deliver(urls: list[str], title: str, body: str, *, kind: str = "failure") -> int:
    """Send one message to every URL; returns how many took it. Never raises."""
    apprise, asset = _apprise()
    notify_type = {
        "failure": apprise.NotifyType.FAILURE,
        "warning": apprise.NotifyType.WARNING,
        "success": apprise.NotifyType.SUCCESS,
    }.get(kind, apprise.NotifyType.INFO)
    delivered = 0
    for url in urls:
        try:
            service = apprise.Apprise.instantiate(url, asset=asset)
            sent = service is not None and bool(
                service.notify(body=body, title=title, notify_type=notify_type)
            )
        except Exception as exc:  # a plugin's own failure must never fail the run
            log.warning("alert not delivered", to=describe(url), error=type(exc).__name__)
            sent = False
        else:
            if not sent:
                why = "not a valid Apprise URL" if service is None else "the service refused it"
                log.warning("alert not delivered", to=describe(url), error=why)
        if sent:
            delivered += 1
        else:
            FAILURES.add()
    return delivered
