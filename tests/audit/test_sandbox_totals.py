"""A real run against the sandbox: the export sums to the report, and both to what was removed."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from support import FAST_RATE, deploy

from retention.sandbox.policies import policy_set, rule

POLICIES = policy_set(rule("recordings", 30), rule("attendees", 60), rule("sessions", 120))


class _Figures(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id") and found.get("data-value") is not None:
            self.values[str(found["id"])] = str(found["data-value"])


def test_export_and_report_agree_with_the_bytes_the_sandbox_lost(
    sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    server = sandbox("--seed", "7", "--days", "130", "--sessions-per-day", "3")
    dep = deploy(server, tmp_path, POLICIES, RETENTION_RATE_LIMIT=FAST_RATE)
    before = server.state()
    dep.cli("run", "--yes", check=True)
    after = server.state()

    events = dep.events()
    outcome_of = {e["intent"]: e["outcome"] for e in events if e["event"] == "outcome"}
    removed = [
        e for e in events if e["event"] == "intent" and outcome_of.get(e["seq"]) == "deleted"
    ]
    actions = {e["action"] for e in removed}
    assert actions == {"delete_recordings", "delete_attendees", "delete_session"}
    assert all(e["recordingBytes"] is None for e in removed if e["action"] == "delete_attendees")
    exported = sum(e["recordingBytes"] or 0 for e in removed)
    lost = before["recording_bytes"] - after["recording_bytes"]
    assert lost > 0
    assert exported == lost

    out = tmp_path / "report.html"
    dep.cli("audit", "report", "--out", str(out), check=True)
    page = _Figures()
    page.feed(out.read_text(encoding="utf-8"))
    assert page.values["bytes-removed"] == str(lost)
    assert page.values["removed-count"] == str(len(removed))
