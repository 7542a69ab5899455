"""The root click group, its global options, and the error-to-exit-code mapping."""

from __future__ import annotations

import sys
from typing import Any

import click

from retention.errors import RetentionError
from retention.service.logging import redact_text


class RetentionGroup(click.Group):
    """A click group that turns RetentionError into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RetentionError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"error: {redact_text(exc.message)}", err=True)
            if exc.hint:
                click.echo(f"hint: {redact_text(exc.hint)}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=RetentionGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="goto-retention", prog_name="retention")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Retention policies, legal holds and audited removals for GoTo Meeting."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
