"""A run's hold watcher reads the folder like the loader: a `.yml` hold placed mid-run holds,
and a stray entry appearing mid-run stops the run (the set no longer loads)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import records

from retention.engine.holds import HoldWatcher

from .conftest import DELETE_OLDER_THAN_1D

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SESSION = records.ended(
    at=datetime(2025, 1, 1, 1, tzinfo=UTC),
    meeting_id=2,
    organizer_key=3,
    organizer_email="o@example.com",
    group_key=None,
    group_name=None,
    subject="weekly",
    attendee_count=2,
    recording_id=None,
    recording_bytes=None,
)


def watcher(folder: Path, stopped: list[bool]) -> HoldWatcher:
    return HoldWatcher(folder, lambda: NOW, on_invalid=lambda: stopped.append(True))


def test_a_yml_hold_placed_mid_run_holds_from_the_next_item(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(DELETE_OLDER_THAN_1D)
    stopped: list[bool] = []
    watching = watcher(tmp_path, stopped)
    assert watching.held_by(SESSION) is None
    (tmp_path / "freeze.yml").write_text("holds:\n  - id: FREEZE\n    reason: r\n    all: true\n")
    assert watching.held_by(SESSION) == "hold:FREEZE"
    assert stopped == []


def test_a_stray_entry_appearing_mid_run_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "policies.yaml").write_text(DELETE_OLDER_THAN_1D)
    stopped: list[bool] = []
    watching = watcher(tmp_path, stopped)
    (tmp_path / "freeze.json").write_text("{}")
    reason = watching.held_by(SESSION)
    assert reason is not None
    assert "freeze.json" in reason
    assert stopped == [True]
