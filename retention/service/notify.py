"""systemd notification (sd_notify): READY, STATUS, WATCHDOG, RELOADING and STOPPING messages.

Written here rather than taken from a package: `sdnotify` (last release 2017) is untyped,
hides send errors and knows nothing of the watchdog variables; `systemd-python` and
`cysystemd` are C extensions that need libsystemd headers at install time. The protocol is
one datagram of `KEY=value` lines on the AF_UNIX socket named by $NOTIFY_SOCKET, where a
leading `@` names an abstract-namespace address.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Mapping


def _socket_address(name: str) -> str | bytes:
    if name.startswith("@"):
        return b"\0" + name[1:].encode()
    return name


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """The watchdog timeout in seconds systemd expects this process to honour, or None.

    systemd sets $WATCHDOG_USEC and, when the watchdog is meant for one process of the
    unit, $WATCHDOG_PID: a process whose pid differs must not feed it.
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    watchdog_pid = environ.get("WATCHDOG_PID", "")
    if watchdog_pid and (not watchdog_pid.isdigit() or int(watchdog_pid) != pid):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """Sends notifications to systemd; every method is a no-op when not run under Type=notify."""

    def __init__(self, address: str | None, watchdog_seconds: float | None = None) -> None:
        self.address = address or None
        self.watchdog_seconds = watchdog_seconds
        self._socket: socket.socket | None = None

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, pid: int | None = None
    ) -> Notifier:
        """A notifier for $NOTIFY_SOCKET and the watchdog interval meant for this process."""
        env = os.environ if environ is None else environ
        own_pid = os.getpid() if pid is None else pid
        return cls(env.get("NOTIFY_SOCKET"), watchdog_interval(env, own_pid))

    @property
    def enabled(self) -> bool:
        """Whether a notification socket was given (the service runs under Type=notify)."""
        return self.address is not None

    def send(self, **fields: str) -> bool:
        """Send one datagram of KEY=value lines; False when it could not be delivered.

        A lost notification must not stop removals in flight: the caller decides whether
        to log it, and systemd's own timeouts catch a manager that stopped listening.
        """
        if self.address is None:
            return False
        payload = "\n".join(f"{key}={_one_line(value)}" for key, value in fields.items())
        try:
            if self._socket is None:
                # Non-blocking: a full receive queue (10 datagrams by default) must drop the
                # message, not block the event loop that feeds the watchdog and runs removals.
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._socket.sendto(payload.encode(), _socket_address(self.address))
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete: settings, policies, database and token were checked."""
        return self.send(READY="1", **({"STATUS": status} if status else {}))

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status`."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        """Tell the watchdog the event loop is alive."""
        return self.send(WATCHDOG="1")

    def reloading(self, monotonic_usec: int) -> bool:
        """A reload (SIGHUP) began; follow with ready() once the new set is in force."""
        return self.send(RELOADING="1", MONOTONIC_USEC=str(monotonic_usec))

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown began: in-flight removals are finishing."""
        return self.send(STOPPING="1", **({"STATUS": status} if status else {}))

    def close(self) -> None:
        """Close the socket; a later send opens a new one."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _one_line(value: str) -> str:
    # A newline would start a new assignment and could forge another notification field.
    return " ".join(value.splitlines())


def monotonic_usec(clock: Callable[[], int] = time.monotonic_ns) -> int:
    """CLOCK_MONOTONIC in microseconds, the form RELOADING=1 expects beside it."""
    return clock() // 1000


async def feed_watchdog(notifier: Notifier) -> None:
    """Ping the watchdog at half its interval, from the event loop, until cancelled.

    Being a task on the daemon's loop is the point: a loop that hangs stops the pings,
    and systemd restarts the service.
    """
    if notifier.watchdog_seconds is None or not notifier.enabled:
        return
    while True:
        notifier.watchdog()
        await asyncio.sleep(notifier.watchdog_seconds / 2)
