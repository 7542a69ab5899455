"""systemd notifications reach a real datagram socket, in the protocol's exact form."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid

import anyio
import pytest

from retention.service.notify import Notifier, feed_watchdog, watchdog_interval


@pytest.mark.e2e
def test_ready_from_a_child_process_reaches_the_socket_named_in_its_environment(
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, listener = notify_socket
    child = (
        "from retention.service.notify import Notifier;"
        "import sys; sys.exit(0 if Notifier.from_environ().ready('policies checked') else 1)"
    )
    env = {**os.environ, "NOTIFY_SOCKET": address}
    subprocess.run([sys.executable, "-c", child], env=env, check=True, timeout=30)
    assert listener.recv(4096) == b"READY=1\nSTATUS=policies checked"


def test_abstract_namespace_address_is_reached() -> None:
    name = f"retention-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(b"\0" + name.encode())
        listener.settimeout(10)
        with Notifier(f"@{name}") as notifier:
            assert notifier.stopping("finishing 3 removals")
        assert listener.recv(4096) == b"STOPPING=1\nSTATUS=finishing 3 removals"


def test_status_with_a_newline_cannot_forge_another_field(
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, listener = notify_socket
    with Notifier(address) as notifier:
        notifier.status("last run ok\nREADY=1")
    assert listener.recv(4096) == b"STATUS=last run ok READY=1"


def test_reloading_carries_the_monotonic_time(notify_socket: tuple[str, socket.socket]) -> None:
    address, listener = notify_socket
    with Notifier(address) as notifier:
        notifier.reloading(123456789)
    assert listener.recv(4096) == b"RELOADING=1\nMONOTONIC_USEC=123456789"


def test_without_notify_socket_every_message_is_skipped() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_send_reports_an_undeliverable_message_instead_of_raising() -> None:
    with Notifier(f"@retention-nobody-{uuid.uuid4().hex}") as notifier:
        assert notifier.enabled
        assert not notifier.ready()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_for_this_process_only(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(environ, pid=4242) == expected


@pytest.mark.anyio
async def test_watchdog_is_fed_from_the_event_loop_until_cancelled(
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, listener = notify_socket
    notifier = Notifier.from_environ(
        {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "40000"}, pid=os.getpid()
    )
    listener.setblocking(False)
    received: list[bytes] = []
    async with anyio.create_task_group() as group:
        group.start_soon(feed_watchdog, notifier)
        with anyio.fail_after(10):
            while len(received) < 3:
                await anyio.wait_readable(listener)
                received.append(listener.recv(4096))
        group.cancel_scope.cancel()
    notifier.close()
    assert received == [b"WATCHDOG=1"] * 3


@pytest.mark.anyio
async def test_watchdog_feeder_returns_at_once_when_no_watchdog_is_set(
    notify_socket: tuple[str, socket.socket],
) -> None:
    address, listener = notify_socket
    with anyio.fail_after(5):
        with Notifier(address, watchdog_seconds=None) as notifier:
            await feed_watchdog(notifier)
    listener.setblocking(False)
    with pytest.raises(BlockingIOError):
        listener.recv(4096)
