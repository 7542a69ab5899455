"""The auditor's report of a real record, read in headless Chromium at 1280 px and printed.

One record is built for the module by the real CLI against a sandbox subprocess: a run refused
by the run cap, one whose removals all failed (every DELETE answered 403), an apply halted by
SIGTERM, then, with a hold file added, a run that removes the rest. Every plan was approved
with `--yes`. The page must show each of these by its stable ids, fit 1280 px, and its PDF,
printed by Chromium, must hold the full text of every policy file.
"""

from __future__ import annotations

import hashlib
import io
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import start_sandbox
from playwright.sync_api import Page, sync_playwright
from pypdf import PdfReader
from support import Deployment, deploy, reaped, run_retention

import retention.cli.audit  # noqa: F401  (registers the audit commands on the root group)
from retention.audit.checkpoint import generate_key_pair, key_id
from retention.cli.app import cli
from retention.sandbox.policies import policy_set, rule
from retention.units import format_bytes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium"),
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
SCOPE = "{organizers: [1001, 1002, 1003]}"
POLICIES = policy_set(
    rule("recordings", 30, scope=SCOPE),
    rule("attendees", 45, scope=SCOPE),
    holds="  - id: LIT-7\n    reason: Acme <litigation>\n    scope: {organizers: [1002]}\n",
)
HOLDS = "holds:\n  - id: LIT-9\n    reason: Board review of the Q3 figures\n    sessions: [1]\n"
# Each policy file's text and how many runs loaded it.
FILES = [(POLICIES, 4), (HOLDS, 1)]
# The breaker must not trip: the failed run is to end `failed`, each removal answered 403.
NO_BREAKER = {"RETENTION_BREAKER_WINDOW": "1000", "RETENTION_BREAKER_MIN_CALLS": "1000"}


@dataclass
class Record:
    """The deployment, its events, the runs by what became of them, the reports written."""

    dep: Deployment
    events: list[dict[str, Any]]
    runs: dict[str, str]
    key_id: str
    reports: dict[str, Path]


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _halted_apply(dep: Deployment, plan: Path) -> None:
    """Apply with every call slowed, and SIGTERM once a few removals went out."""
    dep.server.control(latency_ms=300)
    mark = len(dep.requests())
    with reaped(dep.popen("apply", str(plan), "--yes")) as proc:
        _wait_for(lambda: len(dep.deletes(mark)) >= 3)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    dep.server.control(latency_ms=0)
    assert proc.returncode == 1, stderr[-2000:]
    assert "halted" in stderr


def _report_in_process(dep: Deployment, out: Path, *args: str, **env: str | None) -> Path:
    """`retention audit report` through the CLI's own code in this process (no start-up)."""
    done = CliRunner().invoke(
        cli, ["audit", "report", "--out", str(out), *args], env={**dep.env, **env}
    )
    assert done.exit_code == 0, done.output
    return out


def _runs_by_result(events: list[dict[str, Any]]) -> dict[str, str]:
    return {e["details"]["result"]: e["run"] for e in events if e["event"] == "run_finished"}


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Record]:
    root = tmp_path_factory.mktemp("report-record")
    server = start_sandbox(
        ("--seed", "7", "--days", "90", "--sessions-per-day", "4"), root / "sandbox.stderr"
    )
    try:
        keys = root / "keys"
        keys.mkdir()
        _public_path, public = generate_key_pair(keys / "audit.key")
        generate_key_pair(keys / "other.key")
        dep = deploy(
            server,
            root,
            POLICIES,
            RETENTION_CONCURRENCY="2",
            RETENTION_SIGNING_KEY=str(keys / "audit.key"),
        )
        refused = dep.cli("run", "--yes", extra_env={"RETENTION_MAX_DELETIONS_PER_RUN": "1"})
        assert refused.returncode == 3, refused.stderr[-2000:]
        server.control(delete_status=403)
        failed = dep.cli("run", "--yes", extra_env=NO_BREAKER)
        server.control(delete_status=None)
        assert failed.returncode == 1, failed.stderr[-2000:]
        plan = root / "plan.json"
        dep.cli("plan", "--out", str(plan), check=True)
        _halted_apply(dep, plan)
        (dep.policy_dir / "holds.yaml").write_text(HOLDS)
        dep.cli("run", "--yes", check=True)

        written = run_retention("audit", "report", "--out", str(root / "report.html"), env=dep.env)
        assert written.returncode == 0, written.stderr[-2000:]
        reports = {
            "verified": root / "report.html",
            "not_checked": _report_in_process(
                dep, root / "unchecked.html", RETENTION_SIGNING_KEY=None
            ),
            "invalid": _report_in_process(
                dep, root / "invalid.html", "--public-key", str(keys / "other.key.pub")
            ),
        }
        exported = CliRunner().invoke(cli, ["audit", "export", "--format", "jsonl"], env=dep.env)
        assert exported.exit_code == 0, exported.output
        events = [json.loads(line) for line in exported.output.splitlines() if line.strip()]
        yield Record(dep, events, _runs_by_result(events), key_id(public), reports)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


def test_the_record_has_every_case_the_report_must_show(record: Record) -> None:
    assert set(record.runs) == {"refused", "failed", "halted", "ok"}
    outcomes = {e["outcome"] for e in _of(record.events, "outcome")}
    assert {"deleted", "failed"} <= outcomes


def test_signature_state_names_the_keys_verified_unchecked_or_invalid(
    record: Record, browser_page: Page
) -> None:
    for state, report in record.reports.items():
        browser_page.goto(report.as_uri())
        status = browser_page.locator("#signature-status")
        assert status.get_attribute("data-state") == state
        if state == "verified":
            assert status.get_attribute("data-keys") == record.key_id
            assert record.key_id in status.inner_text()


def test_report_shows_approvals_refusals_attention_and_every_removal(
    record: Record, browser_page: Page
) -> None:
    page = browser_page
    page.goto(record.reports["verified"].as_uri())
    events = record.events

    approvals = _of(events, "plan_approved")
    assert page.locator("#approvals tr[data-plan]").count() == len(approvals) == 3
    for approval in approvals:
        row = page.locator(f'#approvals tr[data-plan="{approval["details"]["plan_hash"]}"]')
        assert approval["details"]["approved_by"] in row.inner_text()
        assert approval["time"][:10] in row.inner_text()

    refusal = page.locator('#refusals tr[data-reason="global_cap"]')
    assert page.locator("#refusals tr[data-reason]").count() == 1
    assert "max_deletions_per_run of 1" in refusal.inner_text()
    assert refusal.locator("td").nth(1).inner_text() == record.runs["refused"]

    assert page.locator("#nothing-needs-attention").count() == 0
    for result in ("failed", "halted"):
        row = page.locator(f'#attention-runs tr[data-run="{record.runs[result]}"]')
        assert row.get_attribute("data-result") == result
    assert page.locator("#attention-runs tr[data-run]").count() == 2
    failed = [e for e in _of(events, "outcome") if e["outcome"] == "failed"]
    assert page.locator("#failures tr[data-seq]").count() == len(failed)

    outcomes = _of(events, "outcome")
    intents = {e["seq"]: e for e in _of(events, "intent")}
    rows = page.locator("#removals tr[data-session]")
    assert rows.count() == len(outcomes)
    for outcome in outcomes:
        row = page.locator(f'#removals tr[data-seq="{outcome["seq"]}"]')
        assert row.get_attribute("data-session") == str(outcome["sessionId"])
        cells = row.locator("td").all_inner_texts()
        size = intents[outcome["intent"]]["recordingBytes"]
        assert cells[1:6] == [
            str(outcome["organizerKey"]),
            str(outcome["sessionId"]),
            outcome["policy"],
            outcome["action"],
            format_bytes(size) if size is not None else "-",
        ]
        assert cells[6].startswith(outcome["outcome"])


def test_each_policy_file_once_with_its_runs_and_text(record: Record, browser_page: Page) -> None:
    page = browser_page
    page.goto(record.reports["verified"].as_uri())
    # policies.yaml was in force for all four runs, holds.yaml only for the last: whether a
    # run recorded the texts again or a reference to an earlier load, each shows once.
    files = {hashlib.sha256(text.encode()).hexdigest(): (text, runs) for text, runs in FILES}
    assert len(page.locator("#policy-files [data-sha256]").all()) == len(files)
    for sha, (text, runs) in files.items():
        article = page.locator(f'#policy-files [data-sha256="{sha}"]')
        assert article.get_attribute("data-runs") == str(runs)
        assert article.locator("pre").inner_text().rstrip("\n") == text.rstrip("\n")
        assert article.locator("pre").is_visible()
    assert page.locator("#runs tr[data-run]").count() == 4
    runs_table = page.locator("#runs").inner_text()
    assert not any(sha[:12] in runs_table for sha in files), "runs repeat the file hashes"
    assert page.locator("#policy-sets tr[data-set]").count() == 2


def test_report_fits_1280_px_and_prints_the_policy_texts(
    record: Record, browser_page: Page, tmp_path: Path
) -> None:
    page = browser_page
    page.goto(record.reports["verified"].as_uri())
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    # A time, a number, an id or a size broken over two lines is bad wrapping.
    broken = page.evaluate(
        """() => [...document.querySelectorAll('td.n, td.t, td.id, .nw')].filter(cell => {
            const range = document.createRange(); range.selectNodeContents(cell);
            const rects = [...range.getClientRects()];
            const tops = rects.map(r => r.top), line = Math.max(...rects.map(r => r.height));
            return Math.max(...tops) - Math.min(...tops) > line / 2;
        }).map(cell => cell.textContent)"""
    )
    assert broken == [], broken
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 50_000
    width = int.from_bytes(png[16:20], "big")
    assert width == 1280

    pdf = page.pdf(format="A4", print_background=True)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 2
    printed = "".join("".join(p.extract_text() for p in reader.pages).split())
    for text, _runs in FILES:
        for line in text.splitlines():
            assert "".join(line.split()) in printed, f"printed PDF lacks {line!r}"
    assert "Nothingneedsattention" not in printed


def test_timeliness_chart_draws_one_labelled_series_per_policy(
    record: Record, browser_page: Page
) -> None:
    decided = [e["details"].get("overdue") for e in _of(record.events, "run_finished")]
    decided = [overdue for overdue in decided if overdue is not None]
    assert decided, "the runs that decided the whole inventory carry what was overdue"
    policies = sorted({name for overdue in decided for name in overdue})
    page = browser_page
    page.goto(record.reports["verified"].as_uri())
    assert page.locator("#timeliness").count() == 1
    rows = page.locator("#timeliness-policies tr[data-policy]")
    assert sorted(rows.nth(i).get_attribute("data-policy") or "" for i in range(rows.count())) == (
        policies
    )
    chart = page.locator("svg#overdue-chart")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 300
    series = chart.locator("g.series")
    assert series.count() == len(policies)
    for index in range(series.count()):
        line = series.nth(index)
        name = line.get_attribute("data-policy") or ""
        assert line.locator("text.label").text_content() == name[:20]
        drawn = line.locator("path").count() + line.locator("circle").count()
        assert drawn >= 1, f"series {name} draws nothing"
    assert sorted(
        series.nth(i).get_attribute("data-policy") or "" for i in range(len(policies))
    ) == (policies)
    assert page.locator("script").count() == 0
