"""Alerts of runs through the real CLI: a refusal and a failure each alert once, a repeat within
the window does not, a run that is ok again sends one "resolved"; an undeliverable URL fails
nothing."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from support import Deployment

from retention.sandbox.policies import RECORDINGS_30D


def test_refused_run_alerts_once_then_resolves_once(
    small: Callable[..., Deployment], receiver: Any
) -> None:
    dep = small(RECORDINGS_30D, RETENTION_NOTIFY=receiver.url)
    capped = {"RETENTION_MAX_DELETIONS_PER_RUN": "1"}

    first = dep.cli("run", "--yes", extra_env=capped)
    assert first.returncode == 3, first.stderr
    assert receiver.titles() == ["goto-retention: run refused (global_cap)"]
    body = str(receiver.received[0]["message"])
    run_ids = [e["run"] for e in dep.events() if e["event"] == "run_started"]
    assert f"run: {run_ids[-1]}" in body
    assert "reason: global_cap" in body
    assert "hint: " in body

    again = dep.cli("run", "--yes", extra_env=capped)
    assert again.returncode == 3
    assert len(receiver.received) == 1  # within RETENTION_NOTIFY_REPEAT (24 h)

    ok = dep.cli("run", "--yes")
    assert ok.returncode == 0, ok.stderr
    assert receiver.titles()[1:] == ["goto-retention: resolved: run refused (global_cap)"]

    quiet = dep.cli("run", "--yes")
    assert quiet.returncode == 0
    assert len(receiver.received) == 2


def test_failed_run_alerts_once(small: Callable[..., Deployment], receiver: Any) -> None:
    dep = small(RECORDINGS_30D, RETENTION_NOTIFY=receiver.url)
    dep.server.control(delete_status=403)

    first = dep.cli("run", "--yes")
    assert first.returncode == 1, first.stderr
    assert len(receiver.received) == 1
    title = receiver.titles()[0]
    assert title.startswith(("goto-retention: run failed", "goto-retention: run halted"))
    assert "failed" in str(receiver.received[0]["message"])

    assert dep.cli("run", "--yes").returncode == 1
    assert len(receiver.received) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_alert_url_is_logged_and_the_run_succeeds(
    small: Callable[..., Deployment],
) -> None:
    dead = f"json://127.0.0.1:{_closed_port()}/alerts"
    # The witness fails, which alerts without failing the run.
    dep = small(RECORDINGS_30D, RETENTION_NOTIFY=dead, RETENTION_CHECKPOINT_COMMAND="false")

    done = dep.cli("run", "--yes")

    assert done.returncode == 0, done.stderr
    assert "alert not delivered" in done.stderr
    finished = [e for e in dep.events() if e["event"] == "run_finished"]
    assert finished[-1]["details"]["result"] == "ok"


def test_notify_test_sends_one_message(small: Callable[..., Deployment], receiver: Any) -> None:
    dep = small(RECORDINGS_30D, RETENTION_NOTIFY=f"{receiver.url}, {receiver.url}")

    done = dep.cli("notify", "test")

    assert done.returncode == 0, done.stderr
    assert receiver.titles() == ["goto-retention: test alert"] * 2


def test_notify_test_names_an_unreachable_url(small: Callable[..., Deployment]) -> None:
    dep = small(RECORDINGS_30D, RETENTION_NOTIFY=f"json://127.0.0.1:{_closed_port()}/x")

    done = dep.cli("notify", "test")

    assert done.returncode == 1
    assert "FAILED" in done.stdout
    assert "Traceback" not in done.stderr
