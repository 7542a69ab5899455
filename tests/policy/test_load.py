"""Loading policy sets: the shipped set, hashes and digest, all-or-nothing, the JSON Schema."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from support import invoke_retention

from retention import examples
from retention.cli.app import cli
from retention.policy import PolicyError, json_schema, load_policy_set, parse_duration
from retention.policy.durations import Duration

SHIPPED = examples.POLICIES
SCHEMA = examples.SCHEMA / "policy.schema.json"
RULE = (
    "policies:\n  - name: {name}\n    description: d\n"
    "    action: delete_recordings\n    after: {after}\n"
)


def test_shipped_policies_validate_through_the_cli() -> None:
    result = invoke_retention(
        "validate",
        str(SHIPPED),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("valid: 8 policies (8 enabled), 2 holds in 5 files")


def test_shipped_files_point_editors_at_the_schema() -> None:
    for path in SHIPPED.glob("*.yaml"):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schema/policy.schema.json"


def test_committed_schema_is_what_the_schema_command_prints() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert json.loads(result.output) == json_schema()


def test_shipped_files_satisfy_the_json_schema_as_an_editor_reads_them() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    for source in load_policy_set([SHIPPED]).files:
        as_json = json.loads(json.dumps(source.parsed.data, default=str))
        assert list(validator.iter_errors(as_json)) == [], source.path


def test_schema_refuses_a_bare_number_duration() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = {"policies": [{"name": "a", "description": "d", "action": "retain", "after": 90}]}
    assert not validator.is_valid(document)


def test_one_bad_file_means_nothing_is_loaded(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULE.format(name="good", after="90d"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(RULE.format(name="bad", after="0d"), encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_set([tmp_path])
    assert [str(p) for p in caught.value.errors] == [
        f"{tmp_path / 'b.yaml'}:5:12: after: '0d' is a zero duration:"
        " a period must be at least one day"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULE.format(name="A", after="9"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("holds:\n  - {id: H, reason: r}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_set([tmp_path])
    assert [(Path(p.path).name, p.line, p.col) for p in caught.value.errors] == [
        ("a.yaml", 2, 11),
        ("a.yaml", 5, 12),
        ("b.yaml", 2, 5),
    ]


def test_digest_ignores_file_order_but_sees_any_change(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(SHIPPED, copy)
    files = sorted(copy.glob("*.yaml"))
    forward = load_policy_set(files)
    backward = load_policy_set(list(reversed(files)))
    assert forward.digest == backward.digest == load_policy_set([SHIPPED]).digest
    holds = copy / "holds.yaml"
    holds.write_text(holds.read_text(encoding="utf-8") + "# reviewed\n", encoding="utf-8")
    assert load_policy_set(files).digest != forward.digest


def test_content_hash_follows_the_definition_not_its_spelling(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(RULE.format(name="x", after="90d"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        "# a comment changes nothing\n" + RULE.format(name="x", after="P90D"), encoding="utf-8"
    )
    (tmp_path / "c.yaml").write_text(RULE.format(name="x", after="91d"), encoding="utf-8")
    hashes = [
        load_policy_set([tmp_path / n]).content_hash("x") for n in ("a.yaml", "b.yaml", "c.yaml")
    ]
    assert hashes[0] == hashes[1] != hashes[2]


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file or folder"):
        load_policy_set([tmp_path / "nope"])
    with pytest.raises(PolicyError, match=r"folder holds no \*\.yaml or \*\.yml file"):
        load_policy_set([tmp_path])


def test_disabled_policy_is_a_warning_and_not_applied(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(RULE.format(name="x", after="90d") + "    enabled: false\n", encoding="utf-8")
    policy_set = load_policy_set([path])
    assert policy_set.enabled_policies == ()
    assert [str(w) for w in policy_set.warnings] == [
        f"{path}:6:5: warning: policy 'x' is disabled: it is ignored"
        " (hint: set enabled: true (or remove the key) to apply it)"
    ]


def test_validate_without_paths_reads_the_policy_dir_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(RULE.format(name="x", after="90d"), encoding="utf-8")
    monkeypatch.setenv("RETENTION_POLICY_DIR", str(tmp_path))
    monkeypatch.setenv("RETENTION_CONFIG", "")
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("valid: 1 policies (1 enabled), 0 holds in 1 files")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", Duration(days=90)),
        ("2w", Duration(days=14)),
        ("6m", Duration(months=6)),
        ("7y", Duration(years=7)),
        ("P1Y2M", Duration(years=1, months=2)),
        ("P2W3D", Duration(days=17)),
    ],
)
def test_durations_in_every_form(text: str, expected: Duration) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0d", "P0D", "-1d", "90", "90 d", "PT5H", "P", "101y"])
def test_zero_negative_unitless_timed_and_endless_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("(", r"\(")):
        parse_duration(text)


def test_calendar_year_from_a_leap_day_waits_for_the_first_of_march() -> None:
    end = datetime(2024, 2, 29, 15, 0, tzinfo=UTC)
    assert parse_duration("1y").due_at(end) == datetime(2025, 3, 1, tzinfo=UTC)
    assert parse_duration("1y").cutoff(datetime(2025, 3, 1, tzinfo=UTC)) >= end


HOLD = "holds:\n  - id: {id}\n    reason: litigation\n    all: true\n"
CASES = (
    "tests:\n  - name: one\n    as_of: 2026-12-01\n    session: {start: 2025-10-01T09:00:00Z}\n"
    "    expect: {delete_recordings: due}\n  - name: two\n    as_of: 2026-12-01\n"
    "    session: {start: 2026-11-30T09:00:00Z}\n    expect: {delete_recordings: not_yet}\n"
)


def test_yml_and_any_letter_case_are_policy_files(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.format(name="r", after="90d"), encoding="utf-8")
    (tmp_path / "legal-hold.yml").write_text(HOLD.format(id="H1"), encoding="utf-8")
    (tmp_path / "FREEZE.YAML").write_text(HOLD.format(id="H2"), encoding="utf-8")
    (tmp_path / "Other.Yml").write_text(HOLD.format(id="H3"), encoding="utf-8")
    loaded = load_policy_set([tmp_path])
    assert sorted(hold.id for hold in loaded.holds) == ["H1", "H2", "H3"]


def test_dotfiles_and_text_are_skipped_and_every_yaml_file_is_read_whatever_its_name(
    tmp_path: Path,
) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.format(name="r", after="90d"), encoding="utf-8")
    (tmp_path / "README-legal-hold.yaml").write_text(HOLD.format(id="LIT-9"), encoding="utf-8")
    (tmp_path / ".rules.yaml.swp").write_bytes(b"\x00\xff")
    (tmp_path / "README").write_text("about these files", encoding="utf-8")
    (tmp_path / "notes.md").write_text("# notes", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "case.yaml").write_text(CASES, encoding="utf-8")
    loaded = load_policy_set([tmp_path])
    assert [policy.name for policy in loaded.policies] == ["r"]
    assert [hold.id for hold in loaded.holds] == ["LIT-9"]
    assert loaded.test_files == ((tmp_path / "tests" / "case.yaml", 2),)
    assert sorted((path.name, why) for path, why in loaded.skipped) == [
        (".rules.yaml.swp", "a dotfile"),
        ("README", "text, not YAML"),
        ("notes.md", "text, not YAML"),
    ]


@pytest.mark.parametrize("key", ["policies", "holds"])
def test_a_policy_test_file_holding_policies_or_holds_is_an_error_naming_it(
    tmp_path: Path, key: str
) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.format(name="r", after="90d"), encoding="utf-8")
    (tmp_path / "tests").mkdir()
    misplaced = RULE.format(name="x", after="1d") if key == "policies" else HOLD.format(id="H")
    (tmp_path / "tests" / "legal-hold.yaml").write_text(misplaced, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy_set([tmp_path])
    (problem,) = caught.value.errors
    assert problem.path == str(tmp_path / "tests" / "legal-hold.yaml")
    assert f"holds `{key}`" in problem.message
    (tmp_path / "tests" / "broken.yaml").write_text("holds: [", encoding="utf-8")
    (tmp_path / "tests" / "legal-hold.yaml").unlink()
    with pytest.raises(PolicyError) as caught:
        load_policy_set([tmp_path])
    assert {p.path for p in caught.value.errors} == {str(tmp_path / "tests" / "broken.yaml")}


def test_validate_lists_every_file_read_and_every_file_skipped(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.format(name="r", after="90d"), encoding="utf-8")
    (tmp_path / "README-legal-hold.yaml").write_text(HOLD.format(id="LIT-9"), encoding="utf-8")
    (tmp_path / "README").write_text("about these files", encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "case.yaml").write_text(CASES, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(tmp_path)], env={"RETENTION_CONFIG": ""})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("valid: 1 policies (1 enabled), 1 holds in 2 files")
    assert lines[1:] == [
        f"read {tmp_path / 'README-legal-hold.yaml'}: 0 policies, 1 hold",
        f"read {tmp_path / 'rules.yaml'}: 1 policy, 0 holds",
        f"read {tmp_path / 'tests' / 'case.yaml'}: 2 tests",
        f"skipped {tmp_path / 'README'} (text, not YAML)",
    ]


def test_every_other_entry_is_an_error_naming_its_path(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULE.format(name="r", after="90d"), encoding="utf-8")
    (tmp_path / "holds.json").write_text("{}", encoding="utf-8")
    (tmp_path / "holds.yaml.bak").write_text(HOLD.format(id="H"), encoding="utf-8")
    (tmp_path / "dir.yaml").mkdir()
    (tmp_path / "archive").mkdir()
    os.mkfifo(tmp_path / "x.yaml")
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "sub.yaml").symlink_to(tmp_path / "archive")
    with pytest.raises(PolicyError) as caught:
        load_policy_set([tmp_path])
    named = {Path(problem.path).name: problem.message for problem in caught.value.errors}
    assert sorted(named) == [
        "archive",
        "dir.yaml",
        "gone.yaml",
        "holds.json",
        "holds.yaml.bak",
        "sub.yaml",
        "x.yaml",
        "zero.yaml",
    ]
    assert named["x.yaml"] == "named like a policy file but is a FIFO"
    assert named["zero.yaml"] == "symlink to a device, not to a regular file"
    assert named["dir.yaml"] == "named like a policy file but is a directory"
    assert "not *.yaml or *.yml" in named["holds.json"]
    assert all(problem.hint for problem in caught.value.errors)


def test_a_symlink_to_a_regular_file_is_loaded(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.yaml"
    elsewhere.write_text(HOLD.format(id="H"), encoding="utf-8")
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "holds.yaml").symlink_to(elsewhere)
    assert [hold.id for hold in load_policy_set([folder]).holds] == ["H"]


def test_files_over_one_mebibyte_are_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1024 * 1024) + "\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="over the 1048576 byte limit"):
        load_policy_set([tmp_path])


def test_a_fifo_or_device_given_by_name_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "x.yaml")
    with pytest.raises(PolicyError, match="a FIFO, not a policy file"):
        load_policy_set([tmp_path / "x.yaml"])
    with pytest.raises(PolicyError, match="a device, not a policy file"):
        load_policy_set([Path("/dev/zero")])
