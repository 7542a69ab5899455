"""The HTML report: self-contained, and its figures, rendered by headless Chromium, are right."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from retention.audit import AuditLog

Opener = Callable[..., AuditLog]
Cli = Callable[..., Any]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What the test writes, and therefore what the page must show (computed here, by hand).
REMOVALS = [
    # (month, policy, action, recording bytes, outcome)
    ("2026-04", "recordings-90d", "delete_recordings", 1_500_000_000, "deleted"),
    ("2026-04", "recordings-90d", "delete_recordings", 500_000_000, "deleted"),
    ("2026-04", "sessions-2y", "delete_session", 250_000_000, "deleted"),
    ("2026-05", "sessions-2y", "delete_session", None, "deleted"),
    ("2026-05", "attendees-1y", "delete_attendees", 800_000_000, "deleted"),
    ("2026-05", "sessions-2y", "delete_session", 100_000_000, "failed"),
    ("2026-05", "recordings-90d", "delete_recordings", 300_000_000, "skipped_hold"),
]


class MonthClock:
    """A clock the test moves from month to month; it ticks one second per reading."""

    def __init__(self) -> None:
        self.now = datetime(2026, 4, 2, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _write(log: AuditLog, clock: MonthClock) -> None:
    policy_text = "policies:\n  - name: recordings-90d\n    action: delete_recordings\n"
    for run_number, month in enumerate(("2026-04", "2026-05"), start=1):
        clock.now = datetime.fromisoformat(f"{month}-02T03:00:00+00:00")
        run = f"run-{run_number}"
        log.run_started(run_id=run, trigger="schedule", settings_summary={})
        log.policy_loaded(
            run_id=run,
            files=[("policies/main.yaml", "a" * 64, policy_text)],
            policies=[("recordings-90d", "b" * 64)],
            holds=[("LIT-7", "Acme <litigation>", None)],
        )
        for number, (when, policy, action, size, outcome) in enumerate(REMOVALS):
            if when != month:
                continue
            seq = log.intent(
                run_id=run,
                plan_id=f"plan-{run_number}",
                policy=policy,
                policy_hash="b" * 64,
                action=action,
                organizer_key=100,
                meeting_id=5000 + number,
                session_id=7000 + number,
                subject=f"Session {number}",
                start_time=None,
                end_time=None,
                recording_ids=[f"rec-{number}"] if size else [],
                recording_bytes=size,
                attendee_count=3,
            )
            reason = "server error" if outcome == "failed" else None
            status = 500 if outcome == "failed" else (204 if outcome == "deleted" else None)
            log.outcome(intent_seq=seq, outcome=outcome, status=status, reason=reason)  # type: ignore[arg-type]
        if month == "2026-05":
            log.hold_blocked(
                run_id=run, hold_id="LIT-7", sessions=[9001, 9002], actions={"delete_session": 2}
            )
        log.run_finished(run_id=run, counts={}, result="ok")
        log.checkpoint()


@pytest.fixture
def report_page(open_log: Opener, db_path: Path, run_cli: Cli, tmp_path: Path) -> Path:
    clock = MonthClock()
    log = open_log(clock=clock)
    _write(log, clock)
    log.close()
    out = tmp_path / "report.html"
    result = run_cli("report", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_report_uses_no_external_assets_or_scripts(report_page: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    assert not re.search(r"(?i)<script|<link|<img|src=|url\(|https?://", page)
    assert "@media print" in page
    assert "Acme &lt;litigation&gt;" in page


@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")
def test_report_figures_in_chromium_match_the_events_written(
    report_page: Path, db_path: Path, tmp_path: Path
) -> None:
    deleted = [r for r in REMOVALS if r[4] == "deleted"]
    recording_actions = {"delete_recordings", "delete_session"}
    expected_bytes = sum(r[3] or 0 for r in deleted if r[2] in recording_actions)
    by_month = {m: sum(1 for r in deleted if r[0] == m) for m in ("2026-04", "2026-05")}
    by_policy = {p: sum(1 for r in deleted if r[1] == p) for p in {r[1] for r in deleted}}
    conn = sqlite3.connect(db_path)
    rows, head = conn.execute("SELECT max(seq), hash FROM events").fetchone()
    conn.close()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(report_page.as_uri())
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)

            def value(selector: str, attribute: str = "data-value") -> str | None:
                return page.locator(selector).get_attribute(attribute)

            assert value("#verify-status", "data-clean") == "true"
            assert page.locator("#head-hash").inner_text() == head
            assert value("#row-count") == str(rows)
            assert value("#removed-count") == str(len(deleted))
            assert value("#bytes-removed") == str(expected_bytes)
            assert value("#failed-count") == "1"
            assert value("#held-count") == "1"
            assert value("#pending-count") == "0"
            for month, count in by_month.items():
                assert value(f'#by-month tr[data-month="{month}"]', "data-count") == str(count)
            for policy, count in by_policy.items():
                assert value(f'#by-policy tr[data-policy="{policy}"]', "data-count") == str(count)
            assert page.locator("#by-month svg rect, section svg rect").count() >= len(by_month)
            assert value('#holds tr[data-hold="LIT-7"]', "data-sessions") == "2"
            assert page.locator("#failures tr[data-seq]").count() == 1
            assert page.locator("#runs tr[data-run]").count() == 2
            policy_file = page.locator("#policy-files [data-sha256]")
            assert policy_file.count() == 1
            assert policy_file.get_attribute("data-runs") == "2"
        finally:
            browser.close()
