"""A notification socket nobody reads must not freeze the daemon's event loop."""

from __future__ import annotations

import socket
import threading

from retention.service.notify import Notifier


def test_notifier_drops_messages_instead_of_blocking_when_nobody_reads(
    notify_socket_path: str,
) -> None:
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(notify_socket_path)
    results: list[bool] = []

    def send_many() -> None:
        with Notifier(notify_socket_path) as notifier:
            results.extend(notifier.watchdog() for _ in range(100))

    sender = threading.Thread(target=send_many, daemon=True)
    sender.start()
    sender.join(timeout=10)
    receiver.close()
    assert not sender.is_alive(), "send blocked on a full queue"
    assert results[0] is True
    assert False in results, "messages beyond the queue's length are reported as not sent"
