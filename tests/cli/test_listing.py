"""What the CLI reads without the API: inventory --list, --organizer by email, --policy names."""

from __future__ import annotations

import csv
import io
import json

from support import Deployment


def test_list_reads_the_last_inventory_without_a_scan_and_states_its_age(
    deployment: Deployment,
) -> None:
    before = deployment.cli("inventory", "--list", "organizers")
    assert before.returncode == 2
    assert "no inventory yet" in before.stderr
    deployment.cli("inventory", check=True)
    deployment.server.stop()  # from here on, any API call would fail

    listed = json.loads(
        deployment.cli("inventory", "--list", "organizers", "--format", "json", check=True).stdout
    )
    table = deployment.cli("inventory", "--list", "organizers", check=True).stdout
    groups = deployment.cli("inventory", "--list", "groups", "--format", "csv", check=True)

    organizers = listed["organizers"]
    assert organizers
    assert listed["listed_at"]
    first = organizers[0]
    assert {"organizer_key", "email", "group_key", "group_name"} <= set(first)
    assert first["email"] in table
    assert "ago" in table
    rows = list(csv.DictReader(io.StringIO(groups.stdout)))
    assert [set(row) for row in rows[:1]] == [{"group_key", "name", "organizers", "status"}]
    assert sum(int(row["organizers"]) for row in rows) <= len(organizers)
    assert {row["name"] for row in rows} == {o["group_name"] for o in organizers if o["group_key"]}
    assert "ago" in groups.stderr


def test_organizer_filters_take_an_email_from_the_inventory(deployment: Deployment) -> None:
    deployment.cli("run", "--yes", check=True)
    events = [e for e in deployment.events() if e["event"] == "outcome"]
    key = events[0]["organizerKey"]
    listed = json.loads(
        deployment.cli("inventory", "--list", "organizers", "--format", "json", check=True).stdout
    )
    email = next(o["email"] for o in listed["organizers"] if o["organizer_key"] == key)

    by_email = deployment.cli(
        "audit", "export", "--format", "jsonl", "--organizer", email.upper(), check=True
    )
    by_key = deployment.cli(
        "audit", "export", "--format", "jsonl", "--organizer", str(key), check=True
    )
    unknown = deployment.cli("audit", "show", "--organizer", "nobody@example.com")

    assert by_email.stdout == by_key.stdout
    assert by_email.stdout.strip()
    assert {json.loads(line)["organizerKey"] for line in by_email.stdout.splitlines()} == {key}
    assert unknown.returncode == 2
    assert "nobody@example.com" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_plan_names_an_unknown_policy_before_any_api_call(deployment: Deployment) -> None:
    deployment.server.stop()

    unknown = deployment.cli("plan", "--policy", "recordings-3Od")
    known = deployment.cli("plan", "--policy", "recordings-30d")

    assert unknown.returncode == 2
    assert "recordings-3Od" in unknown.stderr
    assert "attendees-60d, recordings-30d, sessions-90d" in unknown.stderr
    assert known.returncode == 1, "a known name goes on to the API, which is down"
