"""Owner notices out by SMTP (stdlib smtplib): `smtp://`, `smtp+starttls://` or `smtps://`.

smtplib rather than an async client: a notice run sends a handful of messages, in a worker
thread, and the standard library's client is the one every relay has been tested against.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import unquote, urlsplit

from retention.errors import RuntimeFailure, SettingsError
from retention.settings import Settings

SMTP_TIMEOUT_S = 30.0
_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
# RFC 5321: a path of at most 256 octets with its angle brackets, a local part of at most 64.
MAX_ADDRESS = 254
MAX_LOCAL_PART = 64
# What would end a header or name another recipient (`a@x, b@y`), or quote a display name.
_NOT_IN_ADDRESS = frozenset(',;:<>()[]"\\')


class InvalidAddress(ValueError):
    """An organizer's address no message may be sent to; the reason never repeats it."""


def address_problem(address: str) -> str | None:
    """Why no message may go to `address` (said without repeating it), or None when one may."""
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in address):
        return "it holds a control character (a line break: header injection)"
    if any(char.isspace() for char in address) or _NOT_IN_ADDRESS & set(address):
        return "it holds a space or a character that would name another recipient"
    if len(address.encode("utf-8")) > MAX_ADDRESS:
        return f"it is longer than {MAX_ADDRESS} bytes"
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in local:
        return "it is not one local part, one @ and a domain"
    if len(local.encode("utf-8")) > MAX_LOCAL_PART:
        return f"its local part is longer than {MAX_LOCAL_PART} bytes"
    return None


@dataclass(frozen=True)
class Relay:
    """Where mail goes: scheme, host, port and the user (the password is a credential)."""

    scheme: str
    host: str
    port: int
    user: str | None


def relay_of(settings: Settings) -> Relay:
    """`RETENTION_SMTP_URL` read; SettingsError when it is not one of the three forms (one
    holding a password never loads: `settings.py` refuses it)."""
    parts = urlsplit(settings.smtp_url)
    if parts.scheme not in _PORTS or not parts.hostname:
        raise SettingsError(
            f"RETENTION_SMTP_URL: {parts.scheme or '(no scheme)'}://{parts.hostname or ''}"
            " is not an SMTP server URL",
            hint="write smtp+starttls://user@host:587, smtps://user@host:465 or"
            " smtp://localhost:25; the password goes in the credential smtp_password",
        )
    user = unquote(parts.username) if parts.username else None
    return Relay(parts.scheme, parts.hostname, parts.port or _PORTS[parts.scheme], user)


def message(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    """A message from RETENTION_NOTICE_FROM: HTML when the template is an .html one.

    Raises InvalidAddress for an address no message may go to, or a message that cannot be
    built (a line break in its subject): the reason names neither.
    """
    problem = address_problem(to)
    if problem is not None:
        raise InvalidAddress(f"the organizer's address is refused: {problem}")
    try:
        return _build(settings, to, subject, body)
    except ValueError:
        raise InvalidAddress("the message cannot be built: a header holds a line break") from None


def _build(settings: Settings, to: str, subject: str, body: str) -> EmailMessage:
    mail = EmailMessage()
    sender = settings.notice_from or "goto-retention@localhost"
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    html = settings.notice_template.lower().endswith((".html", ".htm", ".html.j2"))
    mail.set_content(body, subtype="html" if html else "plain")
    return mail


def send(settings: Settings, mails: list[EmailMessage]) -> list[bool]:
    """Send each message over one connection; which were accepted. Raises RuntimeFailure when
    the server cannot be reached or refuses the login (no message went)."""
    relay = relay_of(settings)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        if relay.scheme == "smtps":
            context = ssl.create_default_context()
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                relay.host, relay.port, timeout=SMTP_TIMEOUT_S, context=context
            )
        else:
            client = smtplib.SMTP(relay.host, relay.port, timeout=SMTP_TIMEOUT_S)
        with client:
            if relay.scheme == "smtp+starttls":
                client.starttls(context=ssl.create_default_context())
            if relay.user and password:
                client.login(relay.user, password)
            return [_send_one(client, mail) for mail in mails]
    except (OSError, smtplib.SMTPException) as exc:
        raise RuntimeFailure(
            f"owner notices: the mail server {relay.host}:{relay.port} failed: "
            f"{type(exc).__name__}",
            hint="check RETENTION_SMTP_URL and the credential smtp_password; nothing was"
            " marked noticed, the next run tries again",
        ) from None


def _send_one(client: smtplib.SMTP, mail: EmailMessage) -> bool:
    try:
        refused = client.send_message(mail)
    except smtplib.SMTPRecipientsRefused:
        return False
    return not refused
