"""The plan command's offline and change paths: an unreachable API, the inventory's age, and a
policy change against another folder."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
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
from retention.engine.caps import CapViolation
from retention.engine.compare import compare_plans
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


def offline_note(document: Mapping[str, Any]) -> str:
    """The line an offline plan prints: what it decided on, and how old that is."""
    age = document.get("inventory_age_s")
    return (
        f"offline: decided on the inventory of {document['inventory_at']} ({age_text(age)});"
        " nothing was read from the API, which re-reads each item when a plan is applied"
    )


def plan_notes(document: Mapping[str, Any], refused: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a reader must know beside a plan's table: offline, a preview, the policies
    `refused` on their own (by a cap, with its count; or by a name), items left out."""
    notes = [offline_note(document)] if document.get("offline") else []
    if document.get("preview"):
        notes.append(
            f"preview: this plan decides as of {document['as_of']}, in the future; it shows "
            "what will become due and `retention apply` refuses it"
        )
    for entry in refused:
        if entry.get("cap") is not None:
            violation = CapViolation(
                str(entry["policy"]),
                str(entry["cap"]),
                int(entry["count"]),
                entry.get("population"),
                float(entry["limit"]),
            )
            notes.append(f"refused: {violation.describe()}; {violation.hint()}")
    for entry in refused:
        if entry.get("cap") is None and not str(entry["by"]).startswith("cap:"):
            name, by = entry["policy"], entry["by"]
            notes.append(f"refused: policy {name} ({by}); its removals are blocked")
    left_out = document.get("summary", {}).get("left_out")
    if left_out:
        notes.append(
            f"--limit {document.get('limit')}: kept the first {len(document['items'])} removals,"
            f" left out {left_out}; plan again for the next batch"
        )
    return notes


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
            say(console, offline_note(after.document()))
    if after.offline and output != "table":
        say(console_for(stderr=True), offline_note(after.document()))
