"""Command-line entry point: the root `retention` group; errors become exit codes in app.py."""

from __future__ import annotations

import sys

from retention.cli.app import cli

# Each command module attaches its commands to `cli` when imported; one line per module.
# fmt: off
# (command modules)
from retention.cli import policy  # noqa: F401  # isort: skip
from retention.cli import config  # noqa: F401  # isort: skip
from retention.cli import sandbox  # noqa: F401  # isort: skip
from retention.cli import audit  # noqa: F401  # isort: skip
from retention.cli import auth, inventory  # noqa: F401  # isort: skip
# fmt: on


def main() -> None:
    """Run the CLI, mapping RetentionError to its exit code and a message without a traceback."""
    cli.main(prog_name="retention", standalone_mode=True)
    sys.exit(0)
