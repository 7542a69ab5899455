"""Fixtures for the alert and notice tests: a loopback receiver of Apprise's `json://` posts,
a loopback SMTP server (aiosmtpd) keeping every message, and a small sandbox deployment."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from support import FAST_RATE, Deployment, deploy

SMALL = (
    "--seed",
    "7",
    "--organizers",
    "6",
    "--groups",
    "2",
    "--days",
    "60",
    "--sessions-per-day",
    "2",
)


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts, with its envelope."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, str]]:
    """A mailbox and the `smtp://127.0.0.1:PORT` URL of the server that fills it."""
    box = Mailbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, f"smtp://127.0.0.1:{port}"
    finally:
        controller.stop()


@pytest.fixture
def small(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Deployment]:
    """Factory: a small sandbox and the service deployed against it with `policies`."""

    def build(policies: str, *args: str, **settings: str) -> Deployment:
        server = sandbox(*SMALL, *args)
        return deploy(server, tmp_path, policies, RETENTION_RATE_LIMIT=FAST_RATE, **settings)

    return build
