"""`retention test`: the shipped policies pass their tests, a broken intent fails by name,
an invalid test file is refused at FILE:LINE:COL, and the loader never reads tests/ as policies."""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import invoke_retention

from retention import examples
from retention.engine.cases import case_files, load_cases, run_cases
from retention.policy import PolicyError, load_policy_set

SHIPPED = examples.POLICIES
CASE = """\
tests:
  - name: A recording goes after 30 days
    as_of: 2026-12-01
    session: {organizer: ana@example.com, group: Sales, start: 2026-10-01T09:00:00Z,
              end: 2026-10-01T10:00:00Z, recording_bytes: 1000, attendees: 2}
    expect: {delete_recordings: due}
"""
POLICY = """\
policies:
  - name: recordings-30d
    description: Recordings go after 30 days.
    action: delete_recordings
    after: 30d
"""


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    shutil.copytree(SHIPPED, folder)
    return folder


def folder_with(tmp_path: Path, case: str, policy: str = POLICY) -> Path:
    folder = tmp_path / "small"
    (folder / "tests").mkdir(parents=True)
    (folder / "p.yaml").write_text(policy)
    (folder / "tests" / "cases.yaml").write_text(case)
    return folder


def test_the_shipped_policies_pass_their_tests() -> None:
    result = invoke_retention("test", str(SHIPPED))

    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout
    assert len(list((SHIPPED / "tests").glob("*.yaml"))) == 5


def test_a_shorter_retention_on_legal_fails_the_case_that_states_the_intent(
    shipped: Path, tmp_path: Path
) -> None:
    retain = shipped / "retain.yaml"
    retain.write_text(retain.read_text().replace("after: 7y", "after: 5y"))
    junit = tmp_path / "junit.xml"

    result = invoke_retention("test", str(shipped), "--junit", str(junit))

    assert result.returncode == 1
    assert "FAIL " in result.stdout
    assert "Legal's recordings are kept seven years" in result.stdout
    assert "expected retained, got" in result.stdout
    assert "Traceback" not in result.stderr
    suites = ET.parse(junit).getroot()
    failures = [
        case.get("name") for case in suites.iter("testcase") if case.find("failure") is not None
    ]
    assert "Legal's recordings are kept seven years" in failures
    assert int(suites.get("tests", "0")) == len(list(suites.iter("testcase")))


def test_a_failure_names_expected_got_and_the_deciding_rule(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path, CASE.replace("delete_recordings: due", "delete_recordings: held")
    )

    environment = {**os.environ, "RETENTION_POLICY_DIR": str(folder)}

    result = invoke_retention("test", env=environment)  # the configured folder by default

    assert result.returncode == 1
    assert "delete_recordings: expected held, got due (rule recordings-30d" in result.stdout


@pytest.mark.parametrize(
    ("change", "line", "col", "message"),
    [
        (
            ("expect: {delete_recordings: due}", "expect: {delete_recordings: gone}"),
            6,
            33,
            "'gone'",
        ),
        (("attendees: 2}", "attendees: 2, colour: red}"), 5, 79, "unknown key 'colour'"),
        (("as_of: 2026-12-01", "as_of: next week"), 3, 12, "not a date or time"),
        (("    expect: {delete_recordings: due}\n", ""), 2, 5, "missing required key 'expect'"),
        (("group: Sales", "group: [Sales]"), 4, 50, "group"),
    ],
)
def test_an_invalid_case_is_a_problem_at_its_line_and_column(
    tmp_path: Path, change: tuple[str, str], line: int, col: int, message: str
) -> None:
    folder = folder_with(tmp_path, CASE.replace(*change))

    with pytest.raises(PolicyError) as raised:
        load_cases(case_files(folder))

    (problem,) = raised.value.problems
    assert (problem.path, problem.line, problem.col) == (
        str(folder / "tests" / "cases.yaml"),
        line,
        col,
    )
    assert message in problem.message


def test_an_invalid_test_file_exits_2_naming_file_line_and_column(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, CASE.replace("end: 2026", "end: [2026"))
    wrong = folder_with(tmp_path / "other", CASE.replace("as_of: 2026-12-01", "as_of: soon"))

    broken = invoke_retention("test", str(folder))
    invalid = invoke_retention("test", str(wrong))

    assert broken.returncode == 2
    assert f"{folder / 'tests' / 'cases.yaml'}:" in broken.stderr
    assert "invalid YAML" in broken.stderr
    assert invalid.returncode == 2
    assert f"{wrong / 'tests' / 'cases.yaml'}:3:12: tests.0.as_of:" in invalid.stderr
    assert "Traceback" not in broken.stderr + invalid.stderr


def test_cases_are_read_only_from_tests_and_never_as_policies(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, CASE)

    policy_set = load_policy_set([folder])
    cases = load_cases(case_files(folder))
    (folder / "tests" / "notes.txt").write_text("stray")

    assert [source.path.name for source in policy_set.files] == ["p.yaml"]
    assert [case.name for case in cases] == ["A recording goes after 30 days"]
    assert all(result.passed for result in run_cases(cases, policy_set))
    with pytest.raises(PolicyError, match=r"notes\.txt"):
        case_files(folder)


def test_omitted_counts_are_none_and_null_is_unknown(tmp_path: Path) -> None:
    folder = folder_with(
        tmp_path,
        CASE.replace("recording_bytes: 1000, attendees: 2", "attendees: null").replace(
            "{delete_recordings: due}", "{delete_recordings: no_op}"
        ),
        POLICY
        + "  - {name: lists-30d, description: Lists., action: delete_attendees, after: 30d}\n",
    )
    policy_set = load_policy_set([folder])
    (case,) = load_cases(case_files(folder))
    (result,) = run_cases([case], policy_set)

    assert case.session.recording_id is None
    assert case.session.attendee_count is None
    assert result.passed
    assert run_cases(
        [
            type(case)(
                case.name,
                case.path,
                case.line,
                case.as_of,
                case.session,
                {"delete_attendees": "unknown"},
            )
        ],
        policy_set,
    )[0].passed


def test_a_folder_without_tests_exits_2(tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    (folder / "p.yaml").write_text(POLICY)

    result = invoke_retention("test", str(folder))

    assert result.returncode == 2
    assert "no policy tests" in result.stderr
