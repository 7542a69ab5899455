"""Each removal's due time, and what a run's end counts overdue, decided through admission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import records
from plans import load_folder

from retention.engine.admission import Admission, admit
from retention.engine.overdue import (
    forget_other_policies,
    latest_overdue,
    points_count,
    record_overdue,
)
from retention.engine.plan import Plan
from retention.engine.planitem import PlanItem
from retention.engine.state import open_state_db
from retention.engine.timeliness import overdue_at_end
from retention.policy import PolicySet
from retention.sandbox.policies import policy_set, rule

NOW = datetime(2026, 11, 23, tzinfo=UTC)
DAY = timedelta(days=1)
LOADED = NOW - 100 * DAY  # the policies were first loaded long ago
RULE = "recordings-30d"


def folder(tmp_path: Path, *extra: str, holds: str = "", limits: str | None = None) -> PolicySet:
    text = policy_set(rule("recordings", 30, limits=limits), *extra, holds=holds)
    return load_folder(tmp_path, text)


def plan(
    policies: PolicySet, *sessions: object, loaded: datetime = LOADED, **admit_as: object
) -> Plan:
    listed = list(sessions)
    first = dict.fromkeys(policies.content_hashes.values(), loaded)
    admission = Admission(policies, NOW, first_loaded=first, notice_days=7, **admit_as)  # type: ignore[arg-type]
    return admit(lambda: listed, admission, plan_id="p", created_at=NOW)  # type: ignore[arg-type,return-value]


def test_a_removal_is_due_when_its_rule_first_called_for_it(tmp_path: Path) -> None:
    ended = NOW - 40 * DAY
    (item,) = plan(folder(tmp_path), records.ended(1, at=ended)).items
    assert item.due_at == ended + 30 * DAY


def test_a_policy_loaded_after_the_rule_was_due_makes_it_due_from_its_first_load(
    tmp_path: Path,
) -> None:
    loaded = NOW - 2 * DAY
    (item,) = plan(folder(tmp_path), records.ended(1, at=NOW - 40 * DAY), loaded=loaded).items
    assert item.due_at == loaded


def test_a_retain_period_that_ended_later_counts_as_a_blocker(tmp_path: Path) -> None:
    retain = "  - name: keep-35d\n    description: kept\n    action: retain\n    after: 35d\n"
    ended = NOW - 40 * DAY
    (item,) = plan(folder(tmp_path, retain), records.ended(1, at=ended)).items
    assert item.due_at == ended + 35 * DAY


def test_a_lapsed_hold_counts_until_its_expiry(tmp_path: Path) -> None:
    lapsed = NOW - 3 * DAY
    expires = (lapsed - DAY).date().isoformat()
    holds = f"  - id: OLD\n    reason: r\n    all: true\n    expires: {expires}\n"
    (item,) = plan(folder(tmp_path, holds=holds), records.ended(1, at=NOW - 40 * DAY)).items
    assert item.due_at == lapsed


def test_a_notice_wait_counts_as_if_the_notice_went_out_on_time(tmp_path: Path) -> None:
    policies = load_folder(tmp_path, policy_set(rule("recordings", 30, notice="required")))
    ended = NOW - 40 * DAY
    result = plan(policies, records.ended(1, at=ended))
    assert result.items == []
    (entry,) = result.blocked
    assert entry["by"] == "notice"
    assert entry["due_at"] == (ended + 30 * DAY).isoformat().replace("+00:00", "Z")
    found = overdue_at_end(result, ["recordings-30d"], NOW, {})
    assert found["recordings-30d"].reasons == {"notice": 1}


def test_held_removals_are_never_overdue_and_cap_refusals_are(tmp_path: Path) -> None:
    holds = "  - id: LIT\n    reason: r\n    sessions: [1]\n"
    sessions = [records.ended(n, at=NOW - (40 + n) * DAY) for n in (1, 2, 3)]
    result = plan(folder(tmp_path, holds=holds, limits="{max_deletions: 1}"), *sessions)
    assert {entry["by"] for entry in result.blocked} == {"hold:LIT", f"cap:{RULE}"}
    found = overdue_at_end(result, [RULE], NOW, {})[RULE]
    assert found.overdue == 2
    assert found.reasons == {"cap": 2}
    assert found.oldest_due_at == NOW - 43 * DAY + 30 * DAY


def test_what_the_run_made_is_not_overdue_and_a_failure_is(tmp_path: Path) -> None:
    sessions = [records.ended(n, at=NOW - (40 + n) * DAY) for n in (1, 2, 3)]
    result = plan(folder(tmp_path), *sessions)
    keys = [item.key for item in result.items]
    outcomes = {keys[0]: "deleted", keys[1]: "failed"}
    found = overdue_at_end(result, [RULE], NOW, outcomes)[RULE]
    assert found.reasons == {"failed": 1, "not_run": 1}
    proposed = overdue_at_end(result, [RULE], NOW, {}, awaiting_approval=True)[RULE]
    assert proposed.reasons == {"approvals": 3}
    # Due after the run started (a policy loaded by this run): not yet overdue.
    later = overdue_at_end(result, [RULE], NOW - 20 * DAY, {})[RULE]
    assert later.overdue == 0


def test_a_plan_file_item_written_before_due_times_were_kept_still_loads() -> None:
    item = PlanItem(1, 2, 3, "delete_recordings", RULE, "h", (), None, None, None, None, None)
    written = item.to_json()
    assert written["due_at"] is None
    del written["due_at"]
    assert PlanItem.from_json(written) == item
    due = PlanItem.from_json({**written, "due_at": "2026-11-01T00:00:00Z"})
    assert due.due_at == datetime(2026, 11, 1, tzinfo=UTC)


def test_the_overdue_series_keeps_every_run_for_30_days_then_one_point_a_day(
    tmp_path: Path,
) -> None:
    db = open_state_db(tmp_path / "state.db")
    start = NOW - 40 * DAY
    for hour in range(0, 40 * 24, 8):  # three runs a day for 40 days
        at = start + timedelta(hours=hour)
        entry = {"overdue": hour, "oldest_due_at": None, "reasons": {"cap": hour}}
        record_overdue(db, f"run-{hour}", at, {RULE: entry})
    old_days, recent_days = 10, 30
    assert points_count(db, RULE) == old_days + 3 * recent_days
    (latest,) = latest_overdue(db)
    assert latest.overdue == 40 * 24 - 8
    assert latest.reasons == {"cap": 40 * 24 - 8}
    forget_other_policies(db, [RULE])
    assert points_count(db, RULE) == old_days + 3 * recent_days
    forget_other_policies(db, ["renamed"])
    assert latest_overdue(db) == []
