"""`retention validate [PATH…]` and `retention schema`: checking and describing policy files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import click

from retention.cli.app import cli
from retention.engine.inventory import iter_sessions
from retention.engine.policy_checks import check_against_inventory, known_names, lapsed_holds
from retention.errors import InvalidInput
from retention.policy import PolicyError, PolicySet, Problem, json_schema, load_policy_set
from retention.policy.names import missing_hold_ids
from retention.policy.notice import notice_problems
from retention.service.statedir import inventory_if_any
from retention.settings import Settings, load_settings


def _report(problems: Sequence[Problem]) -> None:
    for problem in sorted(problems, key=lambda p: p.sort_key):
        click.echo(str(problem), err=True)


def _load(paths: Sequence[Path]) -> PolicySet:
    """Load the set, printing every problem (warnings included) before failing."""
    try:
        return load_policy_set(paths)
    except PolicyError as exc:
        _report(exc.problems)
        errors = len(exc.errors)
        raise InvalidInput(
            f"policy files are invalid ({errors} {'error' if errors == 1 else 'errors'});"
            " nothing was loaded",
            hint="fix each line named above, then run `retention validate` again",
        ) from None


def _inventory_problems(policy_set: PolicySet, settings: Settings) -> list[Problem]:
    """Names the inventory does not know (errors), rules matching nothing there (warnings);
    read-only, so `validate` works while a run holds the state directory."""
    with inventory_if_any(settings, "check names against", complete=False) as db:
        if db is None:
            return []
        organizers, groups = known_names(db)
        sessions = [int(k) for (k,) in db.execute("SELECT session_id FROM sessions")]
        meetings = [int(k) for (k,) in db.execute("SELECT DISTINCT meeting_id FROM sessions")]
        return [
            *check_against_inventory(policy_set, iter_sessions(db), groups, organizers),
            *missing_hold_ids(policy_set, sessions, meetings),
        ]


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check policy files (default: RETENTION_POLICY_DIR); exit 0 valid, 2 invalid.

    Every problem is printed as FILE:LINE:COL: message (hint: ...). Warnings do not fail.
    Every file read is listed with what it holds, and every entry skipped with why.
    When a scan has filled the inventory, group and organizer names are checked against it.
    """
    settings = load_settings()
    policy_set = _load(list(paths) or [settings.policy_dir])
    found = [
        *policy_set.warnings,
        *lapsed_holds(policy_set, datetime.now(UTC)),
        *_inventory_problems(policy_set, settings),
        *notice_problems(policy_set, settings.owner_notice_days),
    ]
    _report(found)
    errors = sum(problem.severity == "error" for problem in found)
    if errors:
        noun = "error" if errors == 1 else "errors"
        raise InvalidInput(
            f"policy files do not fit the inventory ({errors} {noun})",
            hint="fix each line named above, or run a scan if the inventory is out of date",
        )
    warnings = [problem for problem in found if problem.severity == "warning"]
    enabled = len(policy_set.enabled_policies)
    click.echo(
        f"valid: {len(policy_set.policies)} policies ({enabled} enabled), "
        f"{len(policy_set.holds)} holds in {len(policy_set.files)} files"
        f"{f', {len(warnings)} warnings' if warnings else ''}; digest {policy_set.digest[:16]}"
    )
    _list_files(policy_set)


def _plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _list_files(policy_set: PolicySet) -> None:
    """Every file read, with what it holds, and every entry skipped, with why."""
    for source in policy_set.files:
        policies, holds = policy_set.counts(source.path)
        holding = f"{_plural(policies, 'policy', 'policies')}, {_plural(holds, 'hold')}"
        click.echo(f"read {source.path}: {holding}")
    for path, tests in policy_set.test_files:
        click.echo(f"read {path}: {_plural(tests, 'test')}")
    for path, reason in policy_set.skipped:
        click.echo(f"skipped {path} ({reason})")


@cli.command()
def schema() -> None:
    """Print the JSON Schema of policy files (for editors: yaml-language-server)."""
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True))
