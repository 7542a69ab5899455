"""`retention validate` checks names against the inventory once a scan has filled it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from retention.cli.app import cli
from retention.engine.inventory import store_directory
from retention.engine.state import open_state_db
from retention.goto.models import Group, Organizer
from retention.policy import load_policy_set
from retention.policy.names import UnknownHoldName, check_hold_names, unknown_names

POLICY = """policies:
  - name: sales-recordings
    description: d
    action: delete_recordings
    after: 30d
    scope: {groups: [Sales, Marketing]}
"""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    db = open_state_db(directory / "state.db")
    organizer = Organizer.model_validate({"organizerKey": 1001, "email": "ana@example.com"})
    group = Group.model_validate({"groupkey": 4411, "groupName": "Sales", "numOrganizers": 1})
    store_directory(db, [organizer], [group], datetime(2026, 1, 1, tzinfo=UTC))
    db.close()
    monkeypatch.setenv("RETENTION_STATE_DIR", str(directory))
    monkeypatch.setenv("RETENTION_CONFIG", "")
    return directory


def policy_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def validate(path: Path) -> Result:
    return CliRunner().invoke(cli, ["validate", str(path)])


HOLDS = """holds:
  - id: LIT-1
    reason: r
    scope: {groups: [sales, Finanse], organizers: [ANA@example.com, bob@example.com]}
    sessions: [777]
policies:
  - name: all-but-ana
    description: d
    action: delete_recordings
    after: 30d
    scope: {exclude_organizers: [ana@exmaple.com]}
  - name: ana-by-key
    description: d
    action: delete_recordings
    after: 30d
    scope: {organizers: [1001], groups: [4411]}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            POLICY,
            [
                "{path}:6:29: unknown group 'Marketing'",
                "policy files do not fit the inventory (1 error)",
            ],
            id="a-group-it-does-not-know",
        ),
        pytest.param(
            HOLDS,
            [
                "{path}:4:29: unknown group 'Finanse'",
                "{path}:4:69: unknown organizer 'bob@example.com'",
                "{path}:11:34: unknown organizer 'ana@exmaple.com'",
                "policy files do not fit the inventory (3 errors)",
                "{path}:5:16: warning: hold 'LIT-1' lists session 777",
            ],
            id="every-unknown-hold-and-exclusion-name-and-a-missing-session-id",
        ),
    ],
)
def test_validate_refuses_names_the_inventory_does_not_know(
    state_dir: Path, tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = policy_file(tmp_path, text)
    result = validate(path)
    assert result.exit_code == 2
    for line in expected:
        assert line.format(path=path) in result.output


def test_validate_passes_names_the_inventory_knows(state_dir: Path, tmp_path: Path) -> None:
    result = validate(policy_file(tmp_path, POLICY.replace(", Marketing", "")))
    assert result.exit_code == 0, result.output
    assert "warning: policy 'sales-recordings' matches no session in the inventory" in result.output


def test_unknown_names_are_listed_per_hold_and_per_policy(tmp_path: Path) -> None:
    policy_set = load_policy_set([policy_file(tmp_path, HOLDS)])
    unknown = unknown_names(policy_set, [(1001, "ana@example.com")], [(4411, "Sales")])
    assert {hold: [n.name for n in names] for hold, names in unknown.holds.items()} == {
        "LIT-1": ["Finanse", "bob@example.com"]
    }
    assert {name: [n.name for n in names] for name, names in unknown.policies.items()} == {
        "all-but-ana": ["ana@exmaple.com"]
    }
    assert unknown.blocked_by("all-but-ana") == "unknown:ana@exmaple.com"
    assert unknown.blocked_by("ana-by-key") is None
    assert not unknown_names(
        policy_set,
        [
            (1001, "x"),
            (1002, "bob@example.com"),
            (1003, "ana@exmaple.com"),
            (1004, "ANA@example.com"),
        ],
        [(4411, "Sales"), (4412, "FINANSE")],
    )


def test_hold_naming_an_unknown_group_refuses_with_reason_unknown_name(tmp_path: Path) -> None:
    policy_set = load_policy_set([policy_file(tmp_path, HOLDS)])
    with pytest.raises(UnknownHoldName) as caught:
        check_hold_names(policy_set, [(1001, "ana@example.com")], [(4411, "Sales")])
    assert caught.value.exit_code == 3
    assert caught.value.reason == "unknown_name"
    assert (caught.value.hold, caught.value.name) == ("LIT-1", "Finanse")
    assert "hold 'LIT-1' names the group 'Finanse'" in caught.value.message
    check_hold_names(
        policy_set,
        [(1001, "ana@example.com"), (1002, "Bob@Example.com")],
        [(4411, "Sales"), (4412, "Finanse")],
    )
