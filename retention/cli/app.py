"""The root click group, its global options, and the error-to-exit-code mapping."""

from __future__ import annotations

import difflib
import importlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import click

from retention import __version__
from retention.cli.failures import known_failure
from retention.cli.variables import warn_unknown_variables
from retention.errors import RetentionError
from retention.service import journal
from retention.service.logging import redact_text
from retention.settings import load_settings

# Each command's module, imported when the command is asked for: `retention apply` loads
# neither the sandbox nor the report, which keeps every command's start-up short.
COMMAND_MODULES: dict[str, str | tuple[str, ...]] = {
    "apply": "plan",
    "approve": "approve",
    # The commands that write to the record live apart, attached to the same group.
    "audit": ("audit", "audit_write"),
    "auth": "auth",
    "config": "config",
    "daemon": "daemon",
    "demo": "demo",
    "explain": "explain",
    "init": "init",
    "inventory": "inventory",
    "notify": "notify",
    "plan": "plan",
    "plans": "approve",
    "run": "plan",
    "sandbox": "sandbox",
    "schema": "policy",
    "status": "status",
    "test": "policytest",
    "validate": "policy",
}


class SuggestingGroup(click.Group):
    """A group that answers a mistyped command with the nearest ones (`paln`: `plan`)."""

    group_class: type[click.Group] | type[type] | None = type  # its subgroups suggest too

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        unknown = name and not name.startswith("-") and self.get_command(ctx, name) is None
        if unknown and not ctx.resilient_parsing:
            raise click.UsageError(_no_such_command(name, self.list_commands(ctx)), ctx)
        return super().resolve_command(ctx, args)


def _no_such_command(name: str, commands: list[str]) -> str:
    close = difflib.get_close_matches(name, commands, n=3, cutoff=0.6)
    if not close:
        return f"No such command {name!r}."
    return f"No such command {name!r}. Did you mean {' or '.join(map(repr, close))}?"


class RetentionGroup(SuggestingGroup):
    """A click group that turns every known failure into one message and an exit code."""

    group_class = SuggestingGroup  # `audit`, `config`, … : not the lazy command table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMAND_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        modules = COMMAND_MODULES.get(cmd_name)
        if modules is not None and cmd_name not in self.commands:
            for module in (modules,) if isinstance(modules, str) else modules:
                importlib.import_module(f"retention.cli.{module}")  # attaches its commands
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:
            debug = bool(ctx.obj and ctx.obj.get("debug"))
            failure = known_failure(exc, _state_dir())
            if debug:
                _print_traceback(exc)
            if failure is None:
                if debug:
                    sys.exit(1)
                raise
            _report(failure)


def _report(failure: RetentionError) -> NoReturn:
    _error_line(f"error: {redact_text(failure.message)}")
    if failure.hint:
        _error_line(f"hint: {redact_text(failure.hint)}")
    if failure.reason:
        _error_line(f"reason: {failure.reason}")
    sys.exit(failure.exit_code)


def _error_line(text: str) -> None:
    """A line of the failure on stderr, at error priority when journald reads the stream."""
    if journal.is_journal_stream(sys.stderr):
        text = journal.prefixed(text, logging.ERROR)
    click.echo(text, err=True)


def _print_traceback(exc: BaseException) -> None:
    """The traceback, masked like log lines: no secret reaches the terminal through it."""
    text = "".join(traceback.format_exception(exc))
    click.echo(redact_text(text), err=True, nl=False)


def _state_dir() -> Path | None:
    """The state directory in force, to name a damaged database; None when settings fail."""
    try:
        return load_settings().state_dir
    except RetentionError:
        return None


@click.group(cls=RetentionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (secrets masked).")
@click.version_option(version=__version__, prog_name="retention")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Retention policies, legal holds and audited removals for GoTo Meeting."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    warn_unknown_variables()
