"""Unknown `RETENTION_*` variables: a mistyped setting is named once on stderr, not ignored."""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Mapping

import click

from retention.service import journal
from retention.settings import Settings

PREFIX = "RETENTION_"
# Read on purpose though they are no setting: crash tests' failpoints, the property tests'
# example count. README "Settings" lists them.
NOT_SETTINGS = frozenset({"RETENTION_FAILPOINTS", "RETENTION_HYPOTHESIS_EXAMPLES"})


def known_variables() -> list[str]:
    """Every variable a setting reads (`RETENTION_CONFIG` included), and the allow-list."""
    return sorted({PREFIX + name.upper() for name in Settings.model_fields} | NOT_SETTINGS)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """Each `RETENTION_*` variable no setting reads (in any case, as settings match them),
    with the nearest known name (None when none is near)."""
    known = known_variables()
    # Compared without the prefix they all share, which would make any name look near.
    suffixes = {name.removeprefix(PREFIX): name for name in known}
    found = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith(PREFIX) and upper not in known:
            close = difflib.get_close_matches(upper.removeprefix(PREFIX), suffixes, n=1)
            found.append((name, suffixes[close[0]] if close else None))
    return found


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> None:
    """One warning line on stderr per unknown variable (stdout may be JSON a tool reads)."""
    for name, nearest in unknown_variables(os.environ if environ is None else environ):
        guess = f"did you mean {nearest}?" if nearest else "see `retention config show`"
        line = f"warning: {name} is not a setting and is ignored ({guess})"
        if journal.is_journal_stream(sys.stderr):
            line = journal.prefixed(line, logging.WARNING)
        click.echo(line, err=True)
