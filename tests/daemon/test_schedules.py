"""A policy's schedule runs that policy: each scheduled run applies only the policies that fired."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from indaemon import START, Clock, daemon, events, fires, started
from routes import World
from structlog.testing import capture_logs

from retention.errors import SettingsError
from retention.service.context import RunContext
from retention.service.preview import preview
from retention.service.schedule import RunQueue, Schedule, parse_schedule, policies_of

TWO_SCHEDULES = """
policies:
  - name: recordings-1d
    description: Recordings go a day after the session ended, checked every 2 seconds.
    action: delete_recordings
    after: 1d
    match: {has_recording: true}
    schedule: "@every 2s"
  - name: attendees-1d
    description: Attendee lists go after a day, checked every 3 seconds.
    action: delete_attendees
    after: 1d
    match: {min_attendees: 1}
    schedule: "@every 3s"
  - name: sessions-5d
    description: Whole sessions go after 5 days, on the default schedule.
    action: delete_session
    after: 5d
  - name: board-7y
    description: Board meetings are kept seven years, whichever schedule runs.
    action: retain
    after: 7y
    match: {subject: "(?i)board"}
"""
# The default schedule: it fires after the two others have removed what they call for.
DEFAULT = "@every 10s"


@pytest.mark.anyio
async def test_each_scheduled_run_applies_only_the_policies_whose_schedule_fired(
    tmp_path: Path,
) -> None:
    world = World.make(tmp_path)
    world.policy_dir.mkdir()
    (world.policy_dir / "policies.yaml").write_text(TWO_SCHEDULES)
    clock = Clock()
    ctx = RunContext(world.settings(), clock=clock, transport=world.spy)
    preview_plan = await preview(ctx, as_of=None, selected=None, record=False)
    retained = {int(e["sessionId"]) for e in preview_plan.blocked if "board-7y" in e["by"]}
    assert retained, "the account has board meetings a delete rule would otherwise remove"
    assert any(item.action == "delete_session" for item in preview_plan.items), (
        "the sessions rule would remove sessions in any run that applied it"
    )
    made = daemon(world, clock, default_schedule=DEFAULT)
    assert {schedule.spec: schedule.policies for schedule in made.schedules} == {
        "@every 2s": ("recordings-1d",),
        "@every 3s": ("attendees-1d",),
        DEFAULT: ("sessions-5d",),
    }
    timeline = fires(made.schedules, START, START + timedelta(seconds=10))
    assert [(moment - START).seconds for moment, _ in timeline] == [2, 3, 4, 6, 6, 8, 9, 10, 10]

    runs: list[tuple[str, ...]] = []

    async def walk(until: datetime) -> None:
        """Fire each schedule at its times on the test's clock, up to `until`."""
        for moment, schedule in [(m, s) for m, s in timeline if clock.now < m <= until]:
            clock.now = moment
            with capture_logs() as logs:
                await made.run_due(schedule.spec)
            [starting] = [e for e in logs if e["event"] == "scheduled run starting"]
            assert starting["policies"] == list(schedule.policies), "only what fired runs"
            assert made.health.last_run_result == "ok", made.health.last_error
            runs.append(schedule.policies)

    async with started(made):
        await walk(START + timedelta(seconds=9))  # the default schedule has not fired yet
        assert set(runs) == {("recordings-1d",), ("attendees-1d",)}
        intents_by_run: dict[str, set[str]] = defaultdict(set)
        for event in events(world, "intent"):
            intents_by_run[event["run"]].add(event["policy"])
        assert sorted(map(sorted, intents_by_run.values())) == [
            ["attendees-1d"],
            ["recordings-1d"],
        ]
        kinds = {action for _session, action in world.spy.deleted}
        assert kinds == {"delete_recordings", "delete_attendees"}, (
            "sessions-5d follows the default schedule"
        )
        removed = {session for session, _action in world.spy.deleted}
        assert not removed & retained, "the retain rule applies in every run"

        await walk(START + timedelta(seconds=10))  # the default schedule fires, then the 2s
        assert runs[-2:] == [("sessions-5d",), ("recordings-1d",)]
        sessions = {s for s, action in world.spy.deleted if action == "delete_session"}
        assert sessions, "the default schedule's run removes whole sessions"
        assert not sessions & retained, "the retain rule applies in every run"


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
    start = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)
    walked = parse_schedule("@every 90s", start=start)
    assert walked.get_next_fire_time(None, start) == start + timedelta(seconds=90)
    daily = parse_schedule("0 3 * * *")
    assert isinstance(daily, CronTrigger)
    assert daily.get_next_fire_time(None, start) == datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
