"""Service test fixtures: the anyio backend and a datagram socket standing in for systemd."""

from __future__ import annotations

import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """A bound AF_UNIX datagram socket, as systemd listens on; yields (address, socket).

    Bound in a short temporary directory: socket paths are limited to 107 bytes, which
    pytest's per-test directories can exceed.
    """
    with tempfile.TemporaryDirectory(prefix="rn-") as directory:
        path = str(Path(directory) / "notify")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(path)
        listener.settimeout(10)
        try:
            yield path, listener
        finally:
            listener.close()
