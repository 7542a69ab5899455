"""Command-line entry point: the root `retention` group; errors become exit codes in app.py."""

from __future__ import annotations

# Each command module attaches its commands to `cli` when imported.
from retention.cli import (  # noqa: F401
    audit,
    auth,
    config,
    daemon,
    demo,
    inventory,
    notify,
    plan,
    policy,
    sandbox,
)
from retention.cli.app import cli


def main() -> None:
    """Run the CLI (click exits with the command's code)."""
    cli.main(prog_name="retention")
