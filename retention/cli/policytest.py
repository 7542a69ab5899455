"""`retention test [DIR] [--junit FILE]`: run the policy folder's tests, like `opa test`.

Exit 0 when every case passes, 1 when one fails (each shown as expected/got with the deciding
rule), 2 when a test file or the policies are invalid (FILE:LINE:COL).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import click

from retention.cli.app import cli
from retention.engine.cases import CaseResult, case_files, load_cases, run_cases
from retention.errors import InvalidInput, RuntimeFailure
from retention.policy import PolicyError, load_policy_set
from retention.policy.folder import TESTS_FOLDER
from retention.settings import load_settings


class PolicyTestsFailed(RuntimeFailure):
    """Some policy test did not get the verdict it expects (exit 1)."""


@cli.command("test")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@click.option(
    "--junit",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the results as JUnit XML (for CI).",
)
def test_command(folder: Path | None, junit: Path | None) -> None:
    """Run the policy tests in DIR/tests/*.yaml (DIR: default RETENTION_POLICY_DIR).

    Each case is one session, an as-of time and the verdict expected per action. Exit 0 all
    pass, 1 some fail, 2 a test file or the policies are invalid.
    """
    folder = folder if folder is not None else load_settings().policy_dir
    if not folder.is_dir():
        raise InvalidInput(
            f"{folder} is not a policy folder", hint="name the folder holding the policy files"
        )
    try:
        files = case_files(folder)
        cases = load_cases(files)
    except PolicyError as exc:
        for problem in exc.errors:
            click.echo(str(problem), err=True)
        raise InvalidInput(
            f"policy tests are invalid ({len(exc.errors)} problems); none was run",
            hint="fix each line named above",
        ) from None
    if not cases:
        raise InvalidInput(
            f"no policy tests in {folder / TESTS_FOLDER}",
            hint="add cases to tests/*.yaml beside the policies (see docs/policies.md)",
        )
    # A `notice: required` policy waits as long as the service would make it wait.
    results = run_cases(
        cases, load_policy_set([folder]), notice_days=load_settings().owner_notice_days
    )
    if junit is not None:
        _write_junit(results, junit)
    failed = [result for result in results if not result.passed]
    for result in failed:
        case = result.case
        click.echo(f"FAIL {case.path}:{case.line}: {case.name}")
        for mismatch in result.mismatches:
            click.echo(f"  {mismatch.describe()}")
    passed = len(results) - len(failed)
    click.echo(f"{passed} passed, {len(failed)} failed ({len(files)} files)")
    if failed:
        raise PolicyTestsFailed(
            f"{len(failed)} of {len(results)} policy tests failed",
            hint="a policy change broke the intent a test states: fix the policy or the test",
        )


def _write_junit(results: Sequence[CaseResult], out: Path) -> None:
    """One <testsuite> per test file, one <testcase> per case, a <failure> per failing one."""
    root = ET.Element("testsuites", name="retention test")
    suites: dict[str, ET.Element] = {}
    for result in results:
        case = result.case
        suite = suites.get(case.path)
        if suite is None:
            suite = suites[case.path] = ET.SubElement(root, "testsuite", name=case.path)
        element = ET.SubElement(
            suite,
            "testcase",
            classname=Path(case.path).stem,
            name=case.name,
            file=case.path,
            line=str(case.line),
        )
        if not result.passed:
            text = "\n".join(mismatch.describe() for mismatch in result.mismatches)
            failure = ET.SubElement(element, "failure", message=result.mismatches[0].describe())
            failure.text = text
    for suite in suites.values():
        cases = list(suite)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
    root.set("tests", str(len(results)))
    root.set("failures", str(sum(not result.passed for result in results)))
    try:
        ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise RuntimeFailure(
            f"cannot write {out}: {exc.strerror}", hint="check the path and its folder"
        ) from None
