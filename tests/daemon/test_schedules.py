"""A policy's schedule runs that policy: each scheduled run applies only the policies that fired."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from retention.errors import SettingsError
from retention.service.schedule import RunQueue, Schedule, parse_schedule, policies_of

TWO_SCHEDULES = """
policies:
  - name: recordings-30d
    description: Recordings go 30 days after the session ended, checked every 2 seconds.
    action: delete_recordings
    after: 30d
    match: {has_recording: true}
    schedule: "@every 2s"
  - name: attendees-30d
    description: Attendee lists go after 30 days, checked every 3 seconds.
    action: delete_attendees
    after: 30d
    match: {min_attendees: 1}
    schedule: "@every 3s"
  - name: sessions-90d
    description: Whole sessions go after 90 days, on the default schedule.
    action: delete_session
    after: 90d
  - name: board-7y
    description: Board meetings are kept seven years, whichever schedule runs.
    action: retain
    after: 7y
    match: {subject: "(?i)board"}
"""


@pytest.mark.e2e
def test_each_scheduled_run_applies_only_the_policies_whose_schedule_fired(
    deployment: Any, daemon: Any
) -> None:
    dep = deployment(TWO_SCHEDULES, "--organizers", "6", "--groups", "2", "--days", "120")
    preview = json.loads(dep.cli("plan", "--format", "json", check=True).stdout)
    retained = {e["sessionId"] for e in preview["blocked"] if "board-7y" in e["by"]}
    assert retained, "the account has board meetings a delete rule would otherwise remove"
    proc = daemon(dep, schedule="@every 1h")
    deadline = time.monotonic() + 60
    kinds: set[str] = set()
    while kinds != {"recordings", "attendees"}:
        assert time.monotonic() < deadline, proc.output()
        time.sleep(0.2)
        kinds = {d["path"].rsplit("/", 1)[-1] for d in dep.deletes()}
    started = [e for e in proc.events() if e["event"] == "scheduled run starting"]
    assert proc.stop() == 0

    assert {tuple(e["policies"]) for e in started} <= {("recordings-30d",), ("attendees-30d",)}
    intents_by_run: dict[str, set[str]] = defaultdict(set)
    for event in dep.events():
        if event["event"] == "intent":
            intents_by_run[event["run"]].add(event["policy"])
    assert sorted(map(sorted, intents_by_run.values())) == [["attendees-30d"], ["recordings-30d"]]
    assert kinds == {"recordings", "attendees"}, "sessions-90d follows the default schedule"
    removed = {d["path"].split("/")[-2] for d in dep.deletes()}
    assert not removed & retained, "the retain rule applies in every run"


def test_a_schedule_firing_during_a_run_is_queued_unless_that_run_applies_its_policies() -> None:
    schedules = [Schedule("@every 2s", ("a",)), Schedule("@every 3s", ("b", "c"))]
    queue = RunQueue()
    assert queue.offer(policies_of(schedules, "@every 2s")) == "start"
    queue.started(frozenset({"a"}))

    assert queue.offer(policies_of(schedules, "@every 2s")) == "covered"
    assert queue.offer(policies_of(schedules, "@every 3s")) == "queued"
    assert queue.offer(frozenset({"a", "b"})) == "queued"

    assert queue.finished(schedules) == {"b", "c"}
    assert queue.offer(frozenset({"a"})) == "start"


def test_a_queued_policy_dropped_by_a_reload_does_not_run() -> None:
    queue = RunQueue()
    queue.started(frozenset({"a"}))
    assert queue.offer(frozenset({"gone", "b"})) == "queued"

    assert queue.finished([Schedule("0 3 * * *", ("a", "b"))]) == {"b"}
    assert queue.finished([]) == frozenset()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("@every 0s", "RETENTION_DEFAULT_SCHEDULE: '@every 0s' is an interval of zero"),
        ("@daily", "RETENTION_DEFAULT_SCHEDULE: '@daily' is neither a 5-field crontab nor"),
        ("0 3 * *", "RETENTION_DEFAULT_SCHEDULE: '0 3 * *' is not a 5-field crontab"),
    ],
)
def test_the_default_schedule_is_refused_as_a_policy_schedule_is(spec: str, message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        parse_schedule(spec)
    assert str(refused.value).startswith(message)
    assert refused.value.hint


def test_both_forms_give_the_trigger_they_name() -> None:
    every = parse_schedule("@every 90s")
    assert isinstance(every, IntervalTrigger)
    assert every.interval.total_seconds() == 90
    daily = parse_schedule("0 3 * * *")
    assert isinstance(daily, CronTrigger)
    start = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    assert daily.get_next_fire_time(None, start) == datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
