"""`retention plan`, `apply` and `run`: preview, approve and execute removals."""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from retention.cli.app import cli
from retention.cli.plan_show import show_command
from retention.cli.planning import compare_command, plan_notes, reaching_api
from retention.cli.render import (
    removal_summary,
    render_execution,
    render_plan_table,
    write_plan_csv,
    write_plan_json,
)
from retention.cli.tables import console_for, say
from retention.engine.plan import Plan
from retention.engine.planfile import load_plan_file
from retention.errors import InvalidInput, RuntimeFailure
from retention.service import pipeline
from retention.service.context import RunContext, load_policies
from retention.service.logging import configure_logging, register_settings_secrets
from retention.service.pipeline import RunResult
from retention.service.preflight import violations as violations_of
from retention.service.preview import preview
from retention.service.progress import logging_progress, progress_logged
from retention.settings import load_settings
from retention.times import parse_user_time

T = TypeVar("T")
# No session predates 2000 (the scan distrusts such times), and far dates overflow date sums.
AS_OF_RANGE = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = parse_user_time(value, option="--as-of")
    if not AS_OF_RANGE[0] <= moment < AS_OF_RANGE[1]:
        raise InvalidInput(
            f"--as-of {value!r} is outside the years the service plans for (2000 to 2099)",
            hint="give a date such as next month's, e.g. 2026-12-31",
        )
    return moment


def _context() -> RunContext:
    configure_logging()
    settings = load_settings()
    register_settings_secrets(settings)
    return RunContext(settings)


def _run_with_signals(ctx: RunContext, job: Callable[[RunContext], Coroutine[Any, Any, T]]) -> T:
    """Run a job; SIGINT/SIGTERM let calls in flight finish and record, then stop."""

    async def main() -> T:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, ctx.stop.set)
        return await job(ctx)

    return asyncio.run(main())


def _confirm(yes: bool, console: Console) -> Callable[[Mapping[str, Any]], bool] | None:
    if yes:
        return None
    if not sys.stdin.isatty():
        raise InvalidInput(
            "refusing to remove anything without confirmation: standard input is not a terminal",
            hint="review the plan, then pass --yes",
        )

    def ask(document: Mapping[str, Any]) -> bool:
        if not document["items"]:
            return True  # nothing to remove: nothing to ask
        say(console, f"About to make {removal_summary(document)}. This cannot be undone.")
        return click.confirm("Proceed?", default=False, err=True)

    return ask


def _approver(yes: bool) -> str:
    who = f"{getpass.getuser()}@{socket.gethostname()}"
    return f"{who} (--yes)" if yes else f"{who} (confirmed at the prompt)"


class _RemovalProgress:
    """A bar of removals made (`12/58 removals`), drawn from the first removal on: never
    during the scan or over the prompt."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("removals"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("removing", total=None)
        self.started = False

    def advance(self, done: int, total: int) -> None:
        if not self.started:
            self.started = True
            self.bar.start()
        self.bar.update(self.task, completed=done, total=total)

    def stop(self) -> None:
        if self.started:
            self.bar.stop()


def _execute_with_progress(
    ctx: RunContext,
    console: Console,
    job: Callable[[RunContext], Coroutine[Any, Any, RunResult]],
) -> RunResult:
    if not console.is_terminal:
        with progress_logged() as logged:
            return _run_with_signals(logging_progress(ctx, logged), job)
    progress = _RemovalProgress(console)
    try:
        return _run_with_signals(dataclasses.replace(ctx, on_progress=progress.advance), job)
    finally:
        progress.stop()


def _finish(result: RunResult, console: Console) -> None:
    reconciled = result.reconciled
    if reconciled is not None and reconciled.outcomes:
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(reconciled.outcomes.items()))
        say(console, f"Left pending by an earlier run, reconciled first: {parts}")
    render_execution(result.execution, console)
    if result.result in ("failed", "halted"):
        raise RuntimeFailure(
            f"run {result.run_id} ended {result.result}: "
            + (result.execution.halted or f"{len(result.execution.failures)} removals failed"),
            hint="see `retention audit show`; failed items are planned again next run",
        )


@cli.group("plan", invoke_without_command=True)
@click.option("--policy", "policies", multiple=True, help="Only this policy's removals (repeat).")
@click.option(
    "--as-of", help="Preview as of this time: a date, an ISO time, or a span such as +30d."
)
@click.option(
    "--limit",
    type=click.IntRange(0),
    help="Keep only the first N removals (oldest session first), to apply in batches.",
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv", "markdown"]),
    default="table",
    help="markdown: only with --compare-to (a pull-request comment).",
)
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write a plan file.")
@click.option(
    "--offline",
    is_flag=True,
    help="Decide on the last inventory without calling the API; states the inventory's age.",
)
@click.option(
    "--compare-to",
    "compare_to",
    type=click.Path(path_type=Path),
    help="Show what the policies in force add and drop against the policy folder DIR.",
    metavar="DIR",
)
def plan_command(  # noqa: PLR0917
    policies: tuple[str, ...],
    as_of: str | None,
    output: str,
    out: Path | None,
    limit: int | None = None,
    offline: bool = False,
    compare_to: Path | None = None,
) -> None:
    """Preview what the policies would remove (a dry run); --out writes a plan to apply.

    `plan show FILE` shows a plan file or a proposal the same way.
    """
    if click.get_current_context().invoked_subcommand is not None:
        return
    context = _context()
    moment = _parse_time(as_of)
    _check_policy_names(context, policies)
    if compare_to is not None:
        if out is not None or limit is not None or output == "csv":
            raise InvalidInput(
                "--compare-to shows a change: it takes --format table, json or markdown, "
                "without --out or --limit",
                hint="plan each folder on its own to write a plan file",
            )
        compare_command(context, compare_to, moment, list(policies), offline, output)
        return
    if output == "markdown":
        raise InvalidInput(
            "--format markdown is the form of a policy change", hint="add --compare-to DIR"
        )
    with progress_logged() as logged:
        logging_ctx = logging_progress(context, logged)
        plan = reaching_api(
            logging_ctx,
            lambda: preview(
                logging_ctx,
                as_of=moment,
                selected=list(policies) or None,
                record=out is not None,
                limit=limit,
                offline=offline,
            ),
        )
    document = plan.document()
    console = console_for()
    notes = console_for(stderr=True) if output != "table" else console
    if out is not None:
        with out.open("w", encoding="utf-8") as handle:
            write_plan_json(document, handle)
    if output == "json":
        write_plan_json(document, sys.stdout)
    elif output == "csv":
        write_plan_csv(document, sys.stdout)
    else:
        policy_set = load_policies(context)
        violations = violations_of(context.settings, plan.items, policy_set, plan.in_scope)
        render_plan_table(document, console, violations)
    _plan_notes(plan, notes)
    if out is not None and output == "table":
        say(console, f"plan written to {out} (hash {document['plan_hash'][:16]}…)")
        if not plan.preview:
            say(console, f"apply it with: retention apply {out}")


plan_command.add_command(show_command)


def _check_policy_names(ctx: RunContext, selected: tuple[str, ...]) -> None:
    """`--policy` names a policy of the set in force, checked before any API call."""
    if not selected:
        return
    known = sorted(policy.name for policy in load_policies(ctx).policies)
    unknown = sorted(set(selected) - set(known))
    if unknown:
        raise InvalidInput(
            f"--policy: no such policy: {', '.join(unknown)}",
            hint=f"the policies are: {', '.join(known) or '(none)'}",
        )


def _plan_notes(plan: Plan, console: Console) -> None:
    """What a reader must know beside the table."""
    for note in plan_notes(plan.document(), plan.refusals()):
        say(console, note)


@cli.command("apply")
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--yes", is_flag=True, help="Approve without asking (for scripts).")
def apply_command(plan_file: Path, yes: bool) -> None:
    """Execute a saved plan: refused if altered, stale, or made under other policies (exit 3)."""
    loaded = load_plan_file(plan_file)
    console = console_for(stderr=True)
    confirm = _confirm(yes, console)

    def job(ctx: RunContext) -> Coroutine[Any, Any, RunResult]:
        return pipeline.apply(ctx, loaded, confirm=confirm, approved_by=_approver(yes))

    _finish(_execute_with_progress(_context(), console, job), console)


@cli.command("run")
@click.option("--yes", is_flag=True, help="Approve without asking (timers and the daemon).")
@click.option("--dry-run", is_flag=True, help="Only preview: the same as `retention plan`.")
@click.pass_context
def run_command(ctx: click.Context, yes: bool, dry_run: bool) -> None:
    """Plan and apply in one step: reconcile, scan, decide, check caps, execute, record."""
    if dry_run:
        ctx.invoke(plan_command, policies=(), as_of=None, output="table", out=None)
        return
    console = console_for(stderr=True)
    confirm = _confirm(yes, console)

    def job(ctx: RunContext) -> Coroutine[Any, Any, RunResult]:
        return pipeline.run(ctx, trigger="run", confirm=confirm, approved_by=_approver(yes))

    result = _execute_with_progress(_context(), console, job)
    if result.plan is not None and not result.plan.items:
        say(console, "nothing to remove")
    _finish(result, console)
