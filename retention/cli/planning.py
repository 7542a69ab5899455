"""The plan command's offline and change paths: an unreachable API, the inventory's age, and a
policy change against another folder."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from retention.cli.failures import leaves
from retention.cli.render_compare import (
    age_text,
    change_document,
    change_markdown,
    render_change_table,
    write_change_json,
)
from retention.cli.tables import console_for, say
from retention.engine.compare import compare_plans
from retention.engine.plan import Plan
from retention.errors import InvalidInput, RuntimeFailure
from retention.goto.errors import ApiError, TlsError
from retention.policy import load_policy_set
from retention.service import preview
from retention.service.context import RunContext

T = TypeVar("T")


def unreachable(exc: BaseException) -> ApiError | None:
    """The call that got no answer at all (refused, unresolved, timed out), if that is what
    failed; a TLS failure or an HTTP status is an answer, not this."""
    for leaf in leaves(exc):
        if isinstance(leaf, ApiError) and leaf.status is None and not isinstance(leaf, TlsError):
            return leaf
    return None


def reaching_api(ctx: RunContext, job: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a plan's job; an API that does not answer is one message with the --offline hint."""
    try:
        return asyncio.run(job())
    except Exception as exc:
        failed = unreachable(exc)
        if failed is None:
            raise
        raise RuntimeFailure(
            f"cannot reach the GoTo API at {ctx.settings.api_base_url}: {failed.message}",
            hint="check the network and RETENTION_API_BASE_URL; `retention plan --offline` "
            "previews on the last inventory without calling the API",
        ) from None


def offline_note(plan: Plan) -> str:
    """The line an offline plan prints: what it decided on, and how old that is."""
    at = plan.document()["inventory_at"]
    return (
        f"offline: decided on the inventory of {at} ({age_text(plan.inventory_age_s)});"
        " nothing was read from the API, which re-reads each item when a plan is applied"
    )


def compare_command(  # noqa: PLR0917
    ctx: RunContext,
    base_dir: Path,
    as_of: datetime | None,
    policies: list[str],
    offline: bool,
    output: str,
) -> None:
    """`plan --compare-to DIR`: plan with DIR and with the folder in force, show the change."""
    if not base_dir.is_dir():
        raise InvalidInput(
            f"--compare-to {base_dir}: not a policy folder",
            hint="pass a folder of policy files, e.g. a checkout of the main branch's policies/",
        )
    base = load_policy_set([base_dir])  # an invalid file: exit 2 naming FILE:LINE:COL
    selected = policies or None
    before, after = reaching_api(
        ctx,
        lambda: preview.compare(ctx, base, as_of=as_of, selected=selected, offline=offline),
    )
    document = change_document(compare_plans(before, after, selected), str(base_dir), after)
    if output == "json":
        write_change_json(document, sys.stdout)
    elif output == "markdown":
        sys.stdout.write(change_markdown(document))
    else:
        console = console_for()
        render_change_table(document, console)
        if after.offline:
            say(console, offline_note(after))
    if after.offline and output != "table":
        say(console_for(stderr=True), offline_note(after))
