"""The policy folder has no blind spots: a hold in `README-legal-hold.yaml` holds, and one put
in `tests/` (where only policy tests are read) refuses every command, naming the file."""

from __future__ import annotations

from collections.abc import Callable

from .conftest import Service

SANDBOX = ("--seed", "5", "--days", "60", "--sessions-per-day", "3")
HOLD_ALL = "holds:\n  - id: LIT-9\n    reason: counsel asked\n    all: true\n"


def test_a_hold_in_a_readme_named_yaml_file_holds(service: Callable[..., Service]) -> None:
    dep = service(*SANDBOX)
    (dep.policy_dir / "README-legal-hold.yaml").write_text(HOLD_ALL)
    validated = dep.cli("validate")
    assert validated.returncode == 0, validated.stderr
    assert f"read {dep.policy_dir / 'README-legal-hold.yaml'}: 0 policies, 1 hold" in (
        validated.stdout
    )
    run = dep.cli("run", "--yes")
    assert run.returncode == 0, run.stderr
    assert dep.deletes() == []


def test_a_hold_put_in_the_tests_folder_refuses_every_command(
    service: Callable[..., Service],
) -> None:
    dep = service(*SANDBOX)
    misplaced = dep.policy_dir / "tests" / "legal-hold.yaml"
    misplaced.parent.mkdir()
    misplaced.write_text(HOLD_ALL)
    for command in (("validate",), ("plan",), ("run", "--yes")):
        result = dep.cli(*command, timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert f"{misplaced}:1:1: a policy test file holds `holds`" in result.stderr
        assert "Traceback" not in result.stderr
    assert dep.deletes() == []
