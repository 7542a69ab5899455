"""`exclude_groups`: a policy that covers everyone but the organizers of some groups.

Validated at FILE:LINE:COL, matched by the one three-valued matcher (a group that cannot be told
never lets a delete rule act, and keeps for a retain rule), unknown names refuse the policy on
its own, explain names the exclusion, and a plan on the sandbox leaves the group out.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import records
from click.testing import CliRunner
from routes import World

from retention.cli.app import cli
from retention.engine.decide import decide
from retention.engine.explain import explain
from retention.engine.inventory import store_directory
from retention.engine.records import SessionRecord
from retention.engine.state import open_state_db
from retention.goto.models import Group, Organizer
from retention.policy import PolicySet, load_policy_set
from retention.policy.names import unknown_names
from retention.service.context import RunContext
from retention.service.preview import preview

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)
RULE = """\
  - name: {name}
    description: d
    action: {action}
    after: {after}
    scope: {scope}
"""


def rule(name: str, action: str, scope: str, after: str = "30d") -> str:
    return RULE.format(name=name, action=action, scope=scope, after=after)


def load(tmp_path: Path, *rules: str) -> PolicySet:
    path = tmp_path / "p.yaml"
    path.write_text("policies:\n" + "".join(rules), encoding="utf-8")
    return load_policy_set([path])


def session(**changes: object) -> SessionRecord:
    # records.ended: organizer 1001 in group 10, "Sales".
    made = records.ended(at=AS_OF - timedelta(days=40), recording_id="r", recording_bytes=1)
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def actions(policy_set: PolicySet, record: SessionRecord) -> list[tuple[str, str]]:
    (decision,) = decide([record], policy_set, AS_OF)
    return [(planned.action, planned.policy) for planned in decision.actions]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param(
            "{exclude_groups: []}",
            "p.yaml:6:29: scope.exclude_groups: list should have at least 1 item",
            id="empty",
        ),
        pytest.param(
            "{exclude_groups: Legal}",
            "p.yaml:6:29: scope.exclude_groups: input should be a valid list",
            id="not-a-list",
        ),
        pytest.param(
            "{exclude_groups: [1.5]}",
            "p.yaml:6:30: scope.exclude_groups[0]: 1.5 is neither a name nor a key",
            id="not-a-name-or-key",
        ),
    ],
)
def test_validate_refuses_a_malformed_exclusion_at_its_line_and_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scope: str, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("policies:\n" + rule("x", "delete_session", scope))
    result = CliRunner().invoke(cli, ["validate", "p.yaml"], env={"RETENTION_CONFIG": ""})
    assert result.exit_code == 2
    assert expected in result.stderr


def test_a_hold_has_no_exclusions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    hold = "holds:\n  - id: H\n    reason: r\n    scope: {exclude_groups: [Legal]}\n"
    (tmp_path / "h.yaml").write_text(hold)
    result = CliRunner().invoke(cli, ["validate", "h.yaml"], env={"RETENTION_CONFIG": ""})
    assert result.exit_code == 2
    assert "h.yaml:4:13: unknown key 'exclude_groups'" in result.stderr


def test_an_excluded_group_by_name_or_key_keeps_its_organizers_out(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("by-name", "delete_recordings", "{exclude_groups: [SALES]}"),
        rule("by-key", "delete_attendees", "{exclude_groups: [10]}"),
    )
    assert actions(policies, session()) == []
    assert sorted(actions(policies, session(group_key=12, group_name="Legal"))) == [
        ("delete_attendees", "by-key"),
        ("delete_recordings", "by-name"),
    ]


def test_an_unknown_group_never_lets_a_delete_rule_act(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("x", "delete_recordings", "{exclude_groups: [Legal]}"))
    (decision,) = decide([session(group_key=None, group_name=None)], policies, AS_OF)
    assert decision.actions == ()
    assert decision.unknown_fields == ("group",)


def test_an_unknown_group_keeps_under_a_retain_rule(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("x", "delete_recordings", "{organizers: [1001]}"),
        rule("keep", "retain", "{exclude_groups: [Sales]}", "1y"),
    )
    assert actions(policies, session()) == [("delete_recordings", "x")]
    assert actions(policies, session(group_key=None, group_name=None)) == []


def test_a_name_the_account_never_had_refuses_the_policy_on_its_own(tmp_path: Path) -> None:
    policies = load(
        tmp_path,
        rule("all-but-legal", "delete_recordings", "{exclude_groups: [Legal, Finanse]}"),
        rule("sales", "delete_attendees", "{groups: [Sales]}"),
    )
    unknown = unknown_names(policies, [(1001, "ana@example.com")], [(10, "Sales"), (11, "LEGAL")])
    assert unknown.blocked_by("all-but-legal") == "unknown:Finanse"
    assert unknown.blocked_by("sales") is None
    assert [(n.what, n.key, n.index) for n in unknown.policies["all-but-legal"]] == [
        ("group", "exclude_groups", 1)
    ]
    assert not unknown.holds


def test_validate_names_the_unknown_excluded_group_at_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    db = open_state_db(state / "state.db")
    organizer = Organizer.model_validate({"organizerKey": 1001, "email": "ana@example.com"})
    group = Group.model_validate({"groupkey": 4411, "groupName": "Sales", "numOrganizers": 1})
    store_directory(db, [organizer], [group], datetime(2026, 1, 1, tzinfo=UTC))
    db.close()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text(
        "policies:\n" + rule("x", "delete_session", "{exclude_groups: [Sales, Finanse]}")
    )
    result = CliRunner().invoke(
        cli, ["validate", "p.yaml"], env={"RETENTION_CONFIG": "", "RETENTION_STATE_DIR": str(state)}
    )
    assert result.exit_code == 2
    assert "p.yaml:6:37: unknown group 'Finanse'" in result.output


def test_explain_says_the_excluded_group_keeps_the_session_out(tmp_path: Path) -> None:
    policies = load(tmp_path, rule("x", "delete_recordings", "{exclude_groups: [Sales]}"))
    explained = explain(session(), policies, AS_OF)
    assert explained.verdict("delete_recordings").verdict == "no_rule"
    assert explained.matched[0].reason == (
        "the organizer is outside its scope (excluding groups Sales)"
    )


@pytest.mark.anyio
async def test_a_plan_on_the_sandbox_leaves_the_excluded_group_out(tmp_path: Path) -> None:
    world = World.make(tmp_path)
    excluded = world.group_of(world.organizer)
    world.policy_dir.mkdir()
    (world.policy_dir / "p.yaml").write_text(
        "policies:\n"
        + rule("all-but-one", "delete_recordings", f"{{exclude_groups: [{excluded}]}}", "1d")
    )
    ctx = RunContext(world.settings(), transport=world.spy)
    plan = await preview(ctx, as_of=None, selected=None, record=False)
    groups = {world.group_of(item.organizer_key) for item in plan.items}
    assert plan.items
    assert excluded not in groups
    assert groups == set(world.groups) - {excluded}
