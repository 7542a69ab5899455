"""`retention status`: the last run, what is overdue per policy, proposals waiting, the record."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from retention.cli.app import cli
from retention.cli.tables import FitTable, console_for, say
from retention.service.status import exit_code, read_status
from retention.settings import load_settings


@cli.command("status")
@click.option("--format", "output", type=click.Choice(["table", "json"]), default="table")
def status_command(output: str) -> None:
    """One screen for the operator; exit 1 when a policy is overdue past RETENTION_MAX_OVERDUE
    or the last run failed or was refused. Reads the state directory without its lock."""
    settings = load_settings()
    status = read_status(settings, datetime.now(UTC))
    if output == "json":
        json.dump(status, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print_status(status, console_for())
    sys.exit(exit_code(status))


def print_status(status: dict[str, Any], console: Console) -> None:
    """The status as lines and a table of the policies with something overdue or not."""
    last = status["last_run"]
    if last is None:
        say(console, "last run: none recorded yet")
    else:
        reason = f" ({last['reason']})" if last["reason"] else ""
        say(console, f"last run: {last['result']}{reason}, ended {last['finished_at']}")
    policies = status["policies"]
    if not policies:
        say(console, "overdue: no run has decided the whole inventory yet")
    else:
        table = FitTable(f"Overdue removals (alert past {status['max_overdue']})")
        table.column("policy", "words")
        table.column("overdue", "number")
        table.column("oldest due", "whole")
        table.column("age", "whole", justify="right")
        table.column("why", "words")
        for row in policies:
            why = ", ".join(f"{reason} {count}" for reason, count in row["reasons"].items())
            age = _age(row["oldest_age_seconds"]) if row["overdue"] else "-"
            table.row(
                row["policy"],
                str(row["overdue"]),
                row["oldest_due_at"] or "-",
                age + (" !" if row["past_limit"] else ""),
                why or "-",
            )
        table.print(console)
    waiting = status["proposals"]
    say(
        console,
        f"proposals waiting: {len(waiting)}"
        + "".join(
            f"\n  {p['file']}: {p['items']} removals, {p['approvals']}/{p['needed']} approvals"
            for p in waiting
        ),
    )
    record = status["record"]
    if not record["exists"]:
        say(console, f"record: none at {record['path']}")
    elif "error" in record:
        say(console, f"record: {record['error']}")
    else:
        say(
            console,
            f"record: {record['rows']} rows (log {record['log_id']}), last sealed "
            f"{record['last_checkpoint_at'] or 'never'}; `retention audit verify` checks it",
        )


def _age(seconds: int) -> str:
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"
