"""The report's contents read from its HTML: the period, references to earlier policy loads,
approvers, and "nothing needs attention" instead of empty tables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from retention.audit import AuditLog
from retention.audit.store import connect_reader

Opener = Callable[..., AuditLog]
Cli = Callable[..., Any]
FIRST = "policies:\n  - name: recordings-90d\n    action: delete_recordings\n    after: 90d\n"
SECOND = "holds:\n  - {id: LIT-9, reason: Board review, sessions: [7001]}\n"


class Elements(HTMLParser):
    """Every start tag's attributes, and the page's text, for selectors by attribute."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, name: str, value: str | None = None) -> list[dict[str, str | None]]:
        """The attributes of each element with attribute `name` (equal to `value` if given)."""
        return [
            attrs
            for _tag, attrs in self.tags
            if name in attrs and (value is None or attrs[name] == value)
        ]

    def ids(self) -> set[str | None]:
        return {attrs.get("id") for _tag, attrs in self.tags if "id" in attrs}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _removal(log: AuditLog, run: str, session: int, outcome: str = "deleted") -> None:
    seq = log.intent(
        run_id=run,
        plan_id=f"plan-{run}",
        policy="recordings-90d",
        policy_hash="c" * 64,
        action="delete_recordings",
        organizer_key=100,
        meeting_id=session + 1000,
        session_id=session,
        subject=None,
        start_time=None,
        end_time=None,
        recording_ids=[f"rec-{session}"],
        recording_bytes=2048,
        attendee_count=None,
    )
    reason = "server error" if outcome == "failed" else None
    log.outcome(intent_seq=seq, outcome=outcome, status=204, reason=reason)  # type: ignore[arg-type]


class DayClock:
    """A clock the test sets to a day; it ticks one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 6, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def record(open_log: Opener) -> dict[str, str]:
    """Three runs on three days with the same policy set: full texts, then two references.

    The second day's run is refused and the third's removal fails; each run's plan is
    approved, the last by two people with their keys' fingerprints.
    """
    clock = DayClock()
    log = open_log(clock=clock)
    runs = {}
    for day, run in enumerate(("run-a", "run-b", "run-c"), start=1):
        clock.now = datetime(2026, 6, day, 3, 0, tzinfo=UTC)
        runs[run] = clock.now.date().isoformat()
        log.run_started(run_id=run, trigger="schedule", settings_summary={})
        # The same set each run: the first load in full, the next ones as references to it.
        files = [("main.yaml", _sha(FIRST), FIRST), ("holds.yaml", _sha(SECOND), SECOND)]
        log.policy_loaded(run_id=run, files=files, policies=[], holds=[])
        approvers = (
            [
                {
                    "principal": "ada@example.org",
                    "fingerprint": "SHA256:" + "A" * 43,
                    "time": "2026-06-03T02:00:00Z",
                    "comment": "checked the list",
                },
                {
                    "principal": "bob@example.org",
                    "fingerprint": "SHA256:" + "B" * 43,
                    "time": "2026-06-03T02:30:00Z",
                    "comment": None,
                },
            ]
            if run == "run-c"
            else None
        )
        data = {"plan_hash": run[-1] * 64, "approved_by": "--yes", "as_of": None}
        if approvers:
            data["approvers"] = approvers
        log._append("plan_approved", data, run=run, plan=f"plan-{run}")
        if run == "run-b":
            log.refused(
                run_id=run, reason="clock_skew", details={"message": "the host clock is 9 min fast"}
            )
            log.run_finished(run_id=run, counts={}, result="refused")
        else:
            _removal(log, run, 7000 + day, "failed" if run == "run-c" else "deleted")
            log.run_finished(run_id=run, counts={}, result="failed" if run == "run-c" else "ok")
        log.checkpoint()
    log.close()
    return runs


def _page(run_cli: Cli, tmp_path: Path, *args: str) -> Elements:
    out = tmp_path / "report.html"
    done = run_cli("report", "--out", str(out), *args)
    assert done.exit_code == 0, done.output
    return Elements(out.read_text(encoding="utf-8"))


def test_policy_texts_resolve_through_references_to_an_earlier_load(
    record: dict[str, str], run_cli: Cli, tmp_path: Path, db_path: Path
) -> None:
    with closing(connect_reader(db_path)) as conn:
        loads = [
            json.loads(data)
            for (data,) in conn.execute(
                "SELECT data FROM events WHERE event = 'policy_loaded' ORDER BY seq"
            )
        ]
    assert ["files" in load for load in loads] == [True, False, False]
    page = _page(run_cli, tmp_path)
    files = page.having("data-sha256")
    assert {f["data-sha256"] for f in files} == {_sha(FIRST), _sha(SECOND)}
    assert {f["data-runs"] for f in files} == {"3"}
    text = "".join(page.text)
    assert FIRST in text
    assert SECOND in text
    assert [r["data-set"] for r in page.having("data-run") if "data-set" in r] == ["set 1"] * 3
    assert "(unchanged)" in text
    assert "not in the record" not in text


def test_the_period_limits_removals_runs_refusals_and_approvals(
    record: dict[str, str], run_cli: Cli, tmp_path: Path
) -> None:
    page = _page(run_cli, tmp_path, "--since", "2026-06-02", "--until", "2026-06-02")
    period = page.having("id", "period")[0]
    assert period["data-since"] == "2026-06-02T00:00:00.000000Z"
    assert period["data-until"] == "2026-06-03T00:00:00.000000Z"
    assert [r["data-run"] for r in page.having("data-run") if "data-set" in r] == ["run-b"]
    assert [r["data-reason"] for r in page.having("data-reason")] == ["clock_skew"]
    assert "the host clock is 9 min fast" in "".join(page.text)
    assert [r["data-plan"] for r in page.having("data-plan")] == ["b" * 64]
    assert page.having("data-session") == []
    assert "no-removals" in page.ids()
    # The policy texts in force for the period's run are resolved from before the period.
    assert len(page.having("data-sha256")) == 2
    assert page.having("id", "verify-status")[0]["data-clean"] == "true"


def test_a_quiet_period_says_nothing_needs_attention_without_empty_tables(
    record: dict[str, str], run_cli: Cli, tmp_path: Path
) -> None:
    page = _page(run_cli, tmp_path, "--until", "2026-06-01")
    ids = page.ids()
    assert "nothing-needs-attention" in ids
    assert not {"attention-runs", "failures", "refusals"} & ids
    assert [r["data-session"] for r in page.having("data-session")] == ["7001"]


def test_failed_runs_and_removals_need_attention_and_approvers_are_named(
    record: dict[str, str], run_cli: Cli, tmp_path: Path
) -> None:
    page = _page(run_cli, tmp_path, "--since", "2026-06-03")
    assert "nothing-needs-attention" not in page.ids()
    attention = [r for r in page.having("data-result") if "data-set" not in r]
    assert [(r["data-run"], r["data-result"]) for r in attention] == [("run-c", "failed")]
    assert "failures" in page.ids()
    row = page.having("data-plan", "c" * 64)[0]
    assert row["data-approvers"] == "2"
    text = "".join(page.text)
    for shown in ("ada@example.org", "SHA256:" + "A" * 43, "checked the list", "bob@example.org"):
        assert shown in text
    assert "--yes" not in text


def test_a_period_that_is_not_a_time_is_refused(
    record: dict[str, str], run_cli: Cli, tmp_path: Path
) -> None:
    done = run_cli("report", "--out", str(tmp_path / "r.html"), "--since", "last tuesday")
    assert done.exit_code == 2
    assert "--since 'last tuesday'" in done.output
    assert not (tmp_path / "r.html").exists()


def test_a_reference_to_no_earlier_load_shows_no_set_and_fails_verification(
    open_log: Opener, run_cli: Cli, tmp_path: Path
) -> None:
    clock = DayClock()
    log = open_log(clock=clock)
    for run in ("run-a", "run-b"):
        log.run_started(run_id=run, trigger="daemon", settings_summary={})
        if run == "run-a":
            files = [("main.yaml", _sha(FIRST), FIRST)]
            log.policy_loaded(run_id=run, files=files, policies=[], holds=[])
        else:  # a row that is not a policy_loaded of this set
            log._append("policy_loaded", {"policy_set_hash": "f" * 64, "same_as": 1}, run=run)
        log.run_finished(run_id=run, counts={}, result="ok")
    log.close()

    page = _page(run_cli, tmp_path)
    assert [f["data-runs"] for f in page.having("data-sha256")] == ["1"]
    assert [r["data-set"] for r in page.having("data-run")] == ["set 1", ""]
    assert page.having("id", "verify-status")[0]["data-clean"] == "false"
