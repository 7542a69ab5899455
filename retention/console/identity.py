"""Who is asking: the identity header, believed only from the trusted proxies, and who may see.

The console sits behind the organisation's single-sign-on proxy, which passes the signed-in
person's email in RETENTION_CONSOLE_USER_HEADER. The header counts only on a request whose peer
address is in RETENTION_CONSOLE_TRUSTED_PROXIES (none by default: then nobody is signed in);
from any other address it is ignored. A signed-in person may view when listed in
RETENTION_CONSOLE_VIEWERS or named as an approver (allowed signers or passkeys).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from retention.approvals.store import approver_names
from retention.errors import SettingsError
from retention.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Addresses or networks, comma-separated; SettingsError naming the setting."""
    found = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            found.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise SettingsError(
                f"RETENTION_CONSOLE_TRUSTED_PROXIES: {part!r} is not an address or a network",
                hint="write addresses or networks, e.g. 127.0.0.1, ::1, 10.0.0.0/24",
            ) from None
    return tuple(found)


def emails(text: str) -> frozenset[str]:
    """Comma-separated emails, compared without case."""
    return frozenset(p.strip().casefold() for p in text.split(",") if p.strip())


@dataclass(frozen=True)
class Gate:
    """The identity header's name, the proxies it is believed from, the viewers listed."""

    header: str
    proxies: tuple[Network, ...]
    viewers: frozenset[str]

    @classmethod
    def of(cls, settings: Settings) -> Gate:
        return cls(
            settings.console_user_header,
            parse_networks(settings.console_trusted_proxies),
            emails(settings.console_viewers),
        )

    def signed_in(self, peer: str | None, headers: Mapping[str, str]) -> str | None:
        """The identity the proxy passed, when the request came from a trusted proxy."""
        if peer is None or not self.proxies:
            return None
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return None
        if not any(address in network for network in self.proxies):
            return None
        value = headers.get(self.header, "").strip()
        return value or None

    def may_view(self, identity: str, settings: Settings) -> bool:
        """Listed as a viewer, or named as an approver."""
        return identity.casefold() in self.viewers or is_approver(identity, settings)


def is_approver(identity: str, settings: Settings) -> bool:
    return identity.casefold() in {name.casefold() for name in approver_names(settings)}
