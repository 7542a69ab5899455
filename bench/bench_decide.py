"""Decision engine throughput: 1,000,000 generated sessions against 50 rules and 5 holds."""

from __future__ import annotations

import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from retention.engine.decide import decide
from retention.engine.records import SessionRecord
from retention.policy import PolicySet, load_policy_set

GROUPS = ["Sales", "Engineering", "Legal", "Support", "HR"]
SUBJECTS = ["Weekly sync", "Acme demo", "Board prep", "Interview: backend", "Customer call"]
TYPES = ["scheduled", "recurring", "immediate"]
ACTIONS = ["delete_recordings", "delete_attendees", "delete_session", "retain"]
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def sessions(count: int, seed: int = 7) -> Iterator[SessionRecord]:
    """Sessions over five years from 2,000 organizers in five groups, made one at a time."""
    rng = random.Random(seed)
    for number in range(count):
        organizer = rng.randrange(2000)
        group = organizer % len(GROUPS)
        start = AS_OF - timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))
        has_recording = rng.random() < 0.3
        yield SessionRecord(
            session_id=10_000_000 + number,
            meeting_id=rng.randrange(200_000),
            organizer_key=1000 + organizer,
            organizer_email=f"user{organizer}@example.com",
            group_key=4400 + group,
            group_name=GROUPS[group],
            subject=f"{rng.choice(SUBJECTS)} #{rng.randrange(10_000)}",
            meeting_type=rng.choice(TYPES),
            start_time=start,
            end_time=start + timedelta(minutes=45),
            attendee_count=rng.randrange(0, 12),
            recording_id=f"rec-{number}" if has_recording else None,
            recording_bytes=50_000_000 if has_recording else None,
        )


def _rule(index: int, rng: random.Random) -> str:
    action = ACTIONS[index % len(ACTIONS)]
    lines = [
        f"  - name: rule-{index:02d}",
        f"    description: generated rule {index}",
        f"    action: {action}",
        f"    after: {rng.choice(['30d', '90d', '6m', '1y', '2y', '3y'])}",
    ]
    if index % 3:
        lines.append(f"    scope: {{groups: [{GROUPS[index % len(GROUPS)]}]}}")
    if index % 2:
        lines.append(f'    match: {{subject: "(?i){rng.choice(SUBJECTS).split()[0]}"}}')
    return "\n".join(lines)


def policy_set(directory: Path) -> PolicySet:
    """50 rules (scoped and global, with and without conditions) and 5 holds, as YAML files."""
    rng = random.Random(11)
    rules = "\n".join(_rule(index, rng) for index in range(50))
    (directory / "rules.yaml").write_text(f"policies:\n{rules}\n", encoding="utf-8")
    holds = [
        "  - {id: H-1, reason: r, sessions: [10000001, 10500000]}",
        "  - {id: H-2, reason: r, meetings: [4242, 777]}",
        '  - {id: H-3, reason: r, scope: {groups: [Legal]}, subject: "(?i)acme"}',
        "  - {id: H-4, reason: r, started_between: [2024-01-01, 2024-01-31]}",
        "  - {id: H-5, reason: r, scope: {organizers: [1001, user7@example.com]}}",
    ]
    (directory / "holds.yaml").write_text("holds:\n" + "\n".join(holds) + "\n", encoding="utf-8")
    return load_policy_set([directory])


def run(count: int, policies: PolicySet) -> tuple[float, dict[str, int]]:
    tally = {"acted": 0, "held": 0, "retained": 0, "waiting": 0, "other": 0}
    started = time.perf_counter()
    for decision in decide(sessions(count), policies, AS_OF):
        if decision.actions:
            tally["acted"] += 1
        elif decision.holds:
            tally["held"] += 1
        elif decision.blocked:
            tally["retained"] += 1
        elif decision.due_at:
            tally["waiting"] += 1
        else:
            tally["other"] += 1
    return time.perf_counter() - started, tally


def main() -> None:
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    with tempfile.TemporaryDirectory() as folder:
        policies = policy_set(Path(folder))
    generation = time.perf_counter()
    for _ in sessions(count):
        pass
    generation = time.perf_counter() - generation
    elapsed, tally = run(count, policies)
    print(f"sessions: {count:,}  rules: {len(policies.policies)}  holds: {len(policies.holds)}")
    print(f"decide:   {elapsed:.1f} s including {generation:.1f} s generating sessions")
    print(f"rate:     {count / elapsed:,.0f} sessions/s   outcome: {tally}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for small in (count // 10, count):
        tracemalloc.start()
        for _ in decide(sessions(small), policies, AS_OF):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"traced peak for {small:,} sessions: {peak / 1024 / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
