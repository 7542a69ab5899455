"""Review mode's proposals on disk: one plan file per proposal, its approvals beside it.

    PLANS_DIR/20261201T030000Z-1a2b3c4d5e6f.json              a pending proposal
    PLANS_DIR/20261201T030000Z-1a2b3c4d5e6f.json.approvals    its approvals (JSON lines)
    PLANS_DIR/applied/, expired/, refused/                    proposals done with, moved there

With RETENTION_APPROVERS_GROUP the folder and the proposals belong to that group (the folder
setgid, group-writable), so approvers in it read proposals and add approvals without root.
"""

from __future__ import annotations

import grp
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from retention.approvals.store import Tally, approvals_needed, approvals_path, tally_of
from retention.engine.planfile import LoadedPlan, read_plan_file
from retention.errors import InvalidInput, RuntimeFailure
from retention.settings import Settings

log = structlog.get_logger(__name__)

Done = Literal["applied", "expired", "refused"]


@dataclass(frozen=True)
class Proposal:
    """One pending proposal: its file and the plan in it."""

    path: Path
    plan: LoadedPlan

    @property
    def selected(self) -> list[str] | None:
        chosen = self.plan.document.get("selected_policies")
        return sorted(chosen) if chosen else None

    def age_hours(self, now: datetime) -> float:
        return (now - self.plan.created_at).total_seconds() / 3600

    def expired(self, now: datetime, settings: Settings) -> bool:
        """Past RETENTION_PLAN_MAX_AGE_HOURS: `apply` would refuse it as stale."""
        return self.age_hours(now) > settings.plan_max_age_hours

    def tally(self, settings: Settings) -> Tally:
        """Its approvals that count (none can without an allowed-signers or passkeys file)."""
        return tally_of(self.path, self.plan.recorded_hash, settings)

    def approved(self, settings: Settings) -> bool:
        """Enough valid approvals of one decision, and no approver rejected it."""
        tally = self.tally(settings)
        return not tally.rejections and len(tally.valid) >= max(1, approvals_needed(settings))


def proposal_name(document: dict[str, Any]) -> str:
    """A proposal's file name: its creation time and the start of its hash."""
    created = str(document["created_at"]).replace("-", "").replace(":", "")[:15]
    return f"{created}Z-{str(document['plan_hash'])[:12]}.json"


def _group(settings: Settings) -> int | None:
    if not settings.approvers_group:
        return None
    try:
        return grp.getgrnam(settings.approvers_group).gr_gid
    except KeyError:
        raise InvalidInput(
            f"RETENTION_APPROVERS_GROUP: no group {settings.approvers_group!r} on this host",
            hint="create it (groupadd) and name it in the unit's SupplementaryGroups=",
        ) from None


def _share(path: Path, gid: int | None, mode: int) -> None:
    """Give the path its mode, and the approvers' group unless a setgid folder already did."""
    if gid is not None and path.stat().st_gid != gid:
        try:
            os.chown(path, -1, gid)
        except OSError as exc:
            log.warning(
                "cannot give the proposal the approvers' group",
                file=str(path),
                error=exc.strerror,
                hint="make the folder setgid and owned by RETENTION_APPROVERS_GROUP",
            )
    path.chmod(mode)


def proposals_folder(settings: Settings) -> Path:
    """The proposals folder, created on first use (setgid and group-writable with a group)."""
    folder = settings.proposals_dir
    if not folder.is_dir():
        try:
            folder.mkdir(parents=True)
            gid = _group(settings)
            _share(folder, gid, 0o2770 if gid is not None else 0o750)
        except OSError as exc:
            raise RuntimeFailure(
                f"cannot create the proposals folder {folder}: {exc.strerror}",
                hint="check RETENTION_PLANS_DIR and the unit's ReadWritePaths=",
            ) from None
    return folder


def write_proposal(settings: Settings, document: dict[str, Any]) -> Path:
    """Write the plan as a new proposal; its name is returned.

    It appears whole or not at all: written under a hidden name, synced, then linked to its
    own name (never over another file), so an approver, `retention plans` or the daemon never
    reads half of it.
    """
    path = proposals_folder(settings) / proposal_name(document)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("x", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        _share(partial, _group(settings), 0o640)
        os.link(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def pending(settings: Settings) -> list[Proposal]:
    """The proposals waiting in the folder, oldest first; an unreadable one is logged, skipped."""
    folder = settings.proposals_dir
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append(Proposal(path, read_plan_file(str(path), path.read_text("utf-8"))))
        except (InvalidInput, OSError, UnicodeDecodeError) as exc:
            log.warning("proposal cannot be read", file=path.name, error=str(exc))
    return found


def set_aside(proposal: Proposal, done: Done) -> Path:
    """Move a proposal and its approvals into `applied/`, `expired/` or `refused/`."""
    into = proposal.path.parent / done
    into.mkdir(exist_ok=True)
    target = into / proposal.path.name
    proposal.path.rename(target)
    approvals = approvals_path(proposal.path)
    if approvals.exists():
        approvals.rename(approvals_path(target))
    return target
