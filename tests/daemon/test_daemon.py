"""The daemon as a subprocess against the sandbox: readiness, schedule, metrics, reload, stop."""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from retention.sandbox.policies import RECORDINGS_30D, policy_set, rule

pytestmark = pytest.mark.e2e

RECORDINGS = RECORDINGS_30D
SESSIONS = policy_set(rule("sessions", 90), rule("attendees", 60, schedule='"0 4 * * *"'))
# Three problems: a misspelt key (so `after` is missing too) and a duration without a unit.
INVALID = """
policies:
  - name: sessions-90d
    description: Whole sessions go after 90 days.
    action: delete_session
    afer: 90d
  - name: attendees-60d
    description: Attendee lists go after 60 days.
    action: delete_attendees
    after: 60
"""


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a Prometheus exposition, by sample name."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def outcomes_by_intent(events: list[dict[str, Any]]) -> Counter[int]:
    return Counter(int(e["intent"]) for e in events if e["event"] == "outcome")


def test_daemon_notifies_ready_runs_on_schedule_and_serves_metrics_and_health(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    """The process: READY, the watchdog, a run the scheduler starts, `/metrics` and `/healthz`
    on its socket, STOPPING. What the runs show in them is
    tests/daemon/test_metrics_and_health.py's, in-process."""
    dep = deployment(RECORDINGS)
    proc = daemon(dep)

    ready = notify_socket.wait_for("READY")
    assert "next run" in ready["STATUS"]
    notify_socket.wait_for("WATCHDOG")
    summary = proc.wait_for_run()
    assert summary["result"] == "ok"
    assert summary["counts"]["deleted"] > 0
    deletes = dep.deletes()
    assert len(deletes) == summary["counts"]["deleted"]
    assert all(d["path"].endswith("/recordings") for d in deletes)

    exposition = proc.get("/metrics")
    assert exposition.status_code == 200
    found = samples(exposition.text)
    last = {
        labels["retention_last_run_result"]: v for labels, v in found["retention_last_run_result"]
    }
    assert last["ok"] == 1.0
    health = proc.get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"

    assert proc.stop() == 0
    notify_socket.wait_for("STOPPING")
    statuses = [m["STATUS"] for m in notify_socket.messages if "STATUS" in m]
    assert any(s.startswith("last run ok at ") for s in statuses), statuses
    verify = dep.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


def reloaded_after_a_run(
    deployment: Any, daemon: Any, notify_socket: Any, policies: str
) -> tuple[Any, Any, int, int]:
    """A daemon on RECORDINGS after its first run, sent SIGHUP with `policies` in its folder:
    the deployment, the daemon, and how many requests and events there were before."""
    dep = deployment(RECORDINGS)
    proc = daemon(dep)
    notify_socket.wait_for("READY")
    proc.wait_for_run()
    mark = len(dep.server.requests())
    (dep.policy_dir / "policies.yaml").write_text(policies)
    seen = len(proc.events())
    proc.signal(signal.SIGHUP)
    return dep, proc, mark, seen


def test_sighup_with_a_valid_set_replaces_the_policies_and_their_schedules(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep, proc, mark, seen = reloaded_after_a_run(deployment, daemon, notify_socket, SESSIONS)
    reloaded = proc.wait_for_event(lambda e: e["event"] == "policies reloaded", after=seen)
    assert reloaded["schedules"] == {
        "0 4 * * *": ["attendees-60d"],
        "@every 2s": ["sessions-90d"],
    }
    notify_socket.wait_for("RELOADING")
    # A run under way at the reload finishes under the set it started with; the next one to
    # start is under the new set.
    reloaded_at = proc.events().index(reloaded)
    started = proc.wait_for_event(
        lambda e: e["event"] == "scheduled run starting", after=reloaded_at
    )
    summary = proc.wait_for_run(after=proc.events().index(started))
    assert summary["result"] == "ok"
    assert summary["counts"]["deleted"] > 0
    assert proc.stop() == 0

    new_deletes = dep.deletes(mark)
    assert new_deletes
    assert not any(d["path"].endswith("/recordings") for d in new_deletes)
    policies = {e["policy"] for e in dep.events() if e["event"] == "intent"}
    assert "sessions-90d" in policies


def test_sighup_with_an_invalid_set_logs_every_problem_and_every_run_is_refused_until_it_loads(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep, proc, _mark, seen = reloaded_after_a_run(deployment, daemon, notify_socket, INVALID)
    rejected = proc.wait_for_event(
        lambda e: e["event"].startswith("the policy folder does not load"), after=seen
    )
    assert rejected["schedules"] == ["@every 2s"], "the jobs stay, and refuse"
    # Each reading of the folder (the reload, then every run) names every problem once.
    problems = sorted(
        {e["problem"] for e in proc.events()[seen:] if e["event"] == "policy problem"}
    )
    assert len(problems) == 3, problems
    assert any("unknown key 'afer'" in p for p in problems)
    assert any("missing" in p and ":3:5:" in p for p in problems), "the policy lacking `after`"
    assert any("has no unit" in p for p in problems)
    assert all(p.startswith(str(dep.policy_dir / "policies.yaml")) for p in problems)

    # Holds cannot be known from an invalid folder: every run is refused before its scan.
    mark = len(dep.server.requests())
    refused = proc.wait_for_event(
        lambda e: e["event"] == "scheduled run did not complete", after=len(proc.events())
    )
    assert (refused["result"], refused["reason"]) == ("refused", "invalid_policies")
    assert dep.deletes(mark) == []
    assert proc.get("/healthz").status_code == 503
    assert proc.proc.poll() is None, "the daemon keeps running"
    assert proc.stop() == 0


def test_manual_run_is_refused_during_a_daemon_run_and_sigterm_stops_it_with_outcomes_recorded(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(SESSIONS)
    proc = daemon(dep)
    notify_socket.wait_for("READY")
    dep.server.control(latency_ms=150)
    proc.wait_for_event(lambda e: e["event"] == "scheduled run starting")
    while not dep.deletes():
        assert proc.proc.poll() is None, proc.output()
        time.sleep(0.05)
    # Held mid-run, so that the run is still in flight however long the manual command takes
    # to start: otherwise it may end first, and the manual run finds the directory free.
    dep.server.control(hang=True)
    manual = dep.cli("run", "--yes")
    assert manual.returncode == 1
    assert f"in use by pid {proc.proc.pid} (retention daemon" in manual.stderr
    proc.signal(signal.SIGTERM)
    notify_socket.wait_for("STOPPING")
    dep.server.control(hang=False)

    assert proc.stop() == 0, proc.output()
    summary = proc.wait_for_run()
    assert summary["counts"]["not_started"] > 0, "the run stopped before its end"
    events = dep.events()
    intents = [int(e["seq"]) for e in events if e["event"] == "intent"]
    assert intents
    assert outcomes_by_intent(events) == Counter(intents), "exactly one outcome per intent"
    finished = [e for e in events if e["event"] == "run_finished"]
    assert finished[-1]["details"]["result"] == "halted"


def test_secrets_never_appear_in_the_daemon_output(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS, "--token-ttl", "2")
    proc = daemon(dep)
    notify_socket.wait_for("READY")
    proc.wait_for_run()
    dep.server.control(revoke_tokens=True)
    proc.wait_for_run(after=len(proc.events()))
    assert proc.stop() == 0

    output = proc.output()
    stored = (dep.state_dir / "refresh_token.json").read_text()
    rotated = stored.split('"refresh_token": "')[1].split('"')[0]
    refreshes = [r for r in dep.server.requests() if r["path"].endswith("/oauth/token")]
    assert len(refreshes) >= 3, "tokens were refreshed and rotated during the test"
    for secret in (dep.env["RETENTION_CLIENT_SECRET"], dep.env["RETENTION_REFRESH_TOKEN"], rotated):
        assert secret not in output
    # Access tokens are 32 URL-safe characters; the log's own ids are hex (log_id, hashes).
    words = {w.strip('"{},:') for w in output.split()}
    token_like = [
        w
        for w in words
        if len(w) == 32
        and w.isascii()
        and not all(c in "0123456789abcdef" for c in w)
        and all(c.isalnum() or c in "-_" for c in w)
    ]
    assert token_like == []


def test_the_daemon_waits_for_a_manual_run_holding_the_state_directory_then_runs(
    deployment: Any, daemon: Any, notify_socket: Any
) -> None:
    dep = deployment(RECORDINGS)
    dep.server.control(hang=True)
    manual = dep.popen("run", "--yes")
    lock_file = dep.state_dir / "retention.lock"
    deadline = time.monotonic() + 60
    while '"retention run"' not in (lock_file.read_text() if lock_file.exists() else ""):
        assert manual.poll() is None, manual.stderr.read() if manual.stderr else ""
        assert time.monotonic() < deadline, "the manual run never took the lock"
        time.sleep(0.05)

    proc = daemon(dep)
    waiting = proc.wait_for_event(lambda e: e["event"] == "waiting for the state directory")
    assert "retention run" in waiting["holder"]
    dep.server.control(hang=False)
    _, stderr = manual.communicate(timeout=120)
    assert manual.returncode == 0, stderr[-2000:]

    notify_socket.wait_for("READY")
    summary = proc.wait_for_run()
    assert summary["result"] == "ok", proc.output()
    assert proc.stop() == 0, proc.output()
