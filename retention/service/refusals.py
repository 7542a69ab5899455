"""Refusals in a run: its own cap refuses it whole, a policy's cap or unknown name that policy.

A policy refused on its own ends the run exit 3, after the other policies' removals; a person
declining at the prompt refuses the plan (exit 3, nothing removed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import structlog

from retention.engine.caps import CapViolation, run_cap_violation
from retention.engine.planitem import PlanItem
from retention.errors import ReasonCode, Refused
from retention.service import preflight
from retention.service.result import RunResult
from retention.service.session import Session

log = structlog.get_logger(__name__)


def refuse_over_run_cap(session: Session, items: list[PlanItem], plan_id: str) -> None:
    """Over `RETENTION_MAX_DELETIONS_PER_RUN` the whole run is refused, before any DELETE."""
    found = run_cap_violation(items, max_per_run=session.settings.max_deletions_per_run)
    if found is not None:
        refusal = preflight.cap_refusal([found], "plan refused by the run's cap: ")
        session.audit.refused(
            run_id=session.run_id,
            reason="global_cap",
            details={"message": refusal.message, "plan_id": plan_id, **found.as_event()},
        )
        raise refusal


def refuse_policies(
    session: Session,
    plan_id: str,
    caps: Sequence[CapViolation],
    unknown: Mapping[str, str],
) -> list[Refused]:
    """One `refused` event per policy refused on its own; the others' removals proceed.

    `unknown` maps a policy to what refused it: `unknown:NAME`, or `cap:NAME` when a plan file
    names a cap refusal without its numbers (one already in `caps` is not counted twice).
    """
    refusals: list[tuple[Refused, ReasonCode, dict[str, object]]] = []
    for violation in caps:
        refusal = Refused(
            f"policy {violation.policy} refused: {violation.describe()}",
            hint=violation.hint(),
            reason="cap",
        )
        refusals.append((refusal, "cap", violation.as_event()))
    counted = {violation.policy for violation in caps}
    for name, by in sorted(unknown.items()):
        if by.startswith("cap:") and name not in counted:
            refusal = Refused(
                f"policy {name} refused: the plan was made with it over its cap",
                hint="make a new plan with `retention plan --out FILE`; raise the cap only if "
                "the removals are right, or apply in batches with --policy and --limit",
                reason="cap",
            )
            refusals.append((refusal, "cap", {"policy": name}))
            continue
        if not by.startswith("unknown:"):
            continue
        missing = by.removeprefix("unknown:")
        refusal = Refused(
            f"policy {name} refused: it names {missing!r}, which the account does not have",
            hint=f"fix the name in policy {name} (`retention validate` shows where), or run "
            "`retention inventory` if it is new",
            reason="unknown_name",
        )
        refusals.append((refusal, "unknown_name", {"policy": name}))
    for refusal, reason, details in refusals:
        session.audit.refused(
            run_id=session.run_id,
            reason=reason,
            details={"message": refusal.message, "plan_id": plan_id, **details},
        )
        log.warning("policy refused on its own", reason=reason, error=refusal.message)
    return [refusal for refusal, _reason, _details in refusals]


def planned_refusals(
    entries: Sequence[Mapping[str, Any]], *, exclude: set[str]
) -> tuple[list[CapViolation], dict[str, str]]:
    """The refusals a plan file names (`refused`), as caps and names, less those in `exclude`
    (refused again at apply time, once each)."""
    caps: list[CapViolation] = []
    others: dict[str, str] = {}
    for entry in entries:
        name, by = str(entry.get("policy")), str(entry.get("by"))
        if name in exclude:
            continue
        if entry.get("cap") is not None and entry.get("limit") is not None:
            population = entry.get("population")
            caps.append(
                CapViolation(
                    name,
                    str(entry["cap"]),
                    int(entry.get("count") or 0),
                    None if population is None else int(population),
                    float(entry["limit"]),
                )
            )
        else:
            others[name] = by
    return caps, others


def declined(session: Session, result: RunResult, plan_id: str) -> NoReturn:
    """The person at the prompt said no: refused by the person (exit 3), nothing removed."""
    result.result = "declined"
    refusal = Refused("cancelled, nothing removed", reason="declined")
    session.audit.refused(
        run_id=session.run_id,
        reason="declined",
        details={"message": refusal.message, "plan_id": plan_id},
    )
    log.info("the plan was declined at the prompt", plan_id=plan_id)
    raise refusal


def end_refused(result: RunResult, refusals: list[Refused]) -> None:
    """After the other policies' removals, a run with a refused policy ends exit 3."""
    if refusals and result.result == "ok":
        result.result = "refused"
        first = refusals[0]
        raise Refused(
            "; ".join(r.message for r in refusals) + " (the other policies' removals were made)",
            hint=first.hint,
            reason=first.reason,
        )
