"""The daemon alerts through the same run session: a refusal repeated by every scheduled run
goes out once within the repeat window."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from support import REPO, Deployment, reaped

from retention.sandbox.policies import RECORDINGS_30D


def test_a_refusal_every_scheduled_run_repeats_alerts_once(
    small: Callable[..., Deployment], receiver: Any
) -> None:
    dep = small(RECORDINGS_30D)
    env = {
        **dep.env,
        "RETENTION_NOTIFY": receiver.url,
        "RETENTION_MAX_DELETIONS_PER_RUN": "1",
        "RETENTION_DEFAULT_SCHEDULE": "@every 1s",
        "RETENTION_METRICS_ADDRESS": "127.0.0.1:0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "retention", "daemon"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    refused: list[dict[str, Any]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == "scheduled run did not complete":
                    refused.append(event)

    reader = threading.Thread(target=read, daemon=True)
    with reaped(proc):
        reader.start()
        deadline = time.monotonic() + 120
        while len(refused) < 3:
            assert proc.poll() is None, "the daemon exited"
            assert time.monotonic() < deadline, "three scheduled runs did not end in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    reader.join(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()

    assert {event["reason"] for event in refused} == {"global_cap"}
    assert receiver.titles() == ["goto-retention: run refused (global_cap)"]
