"""The daemon alerts through the same run session: a refusal repeated by every scheduled run
goes out once within the repeat window."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from daemons import start_daemon
from support import Deployment

from retention.sandbox.policies import RECORDINGS_30D

pytestmark = pytest.mark.e2e


def test_a_refusal_every_scheduled_run_repeats_alerts_once(
    small: Callable[..., Deployment], receiver: Any
) -> None:
    dep = small(RECORDINGS_30D)
    daemon = start_daemon(
        dep.env,
        "@every 1s",
        RETENTION_NOTIFY=receiver.url,
        RETENTION_MAX_DELETIONS_PER_RUN="1",
    )

    def refused() -> list[dict[str, Any]]:
        return [e for e in daemon.events() if e.get("event") == "scheduled run did not complete"]

    try:
        deadline = time.monotonic() + 120
        while len(refused()) < 3:
            assert daemon.proc.poll() is None, "the daemon exited"
            assert time.monotonic() < deadline, "three scheduled runs did not end in time"
            time.sleep(0.1)
        assert daemon.stop() == 0
    finally:
        daemon.reap()

    assert {event["reason"] for event in refused()} == {"global_cap"}
    assert receiver.titles() == ["goto-retention: run refused (global_cap)"]
