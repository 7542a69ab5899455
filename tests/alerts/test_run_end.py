"""What a run's end alerts, in process against a loopback `json://` receiver and a real state
database: the token's age, a halt, and nothing for a run a person declined."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from retention.alerts.runs import RunEnd, run_ended
from retention.engine.state import open_state_db
from retention.errors import Refused
from retention.goto.tokenstore import StoredToken, TokenStore
from retention.settings import Settings

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _end(result: str, error: BaseException | None = None) -> RunEnd:
    return RunEnd("run-1", "run", result, {"planned": 3, "deleted": 1}, error)


def _settle(settings: Settings, end: RunEnd, now: datetime = NOW) -> None:
    db = open_state_db(settings.state_db)
    asyncio.run(run_ended(settings, db, end, lambda: now))


def test_a_refresh_token_25_days_old_alerts_then_resolves(tmp_path: Path, receiver: Any) -> None:
    settings = Settings(state_dir=tmp_path, notify=receiver.url)  # type: ignore[arg-type]
    store = TokenStore.in_state_dir(tmp_path)
    store.save(StoredToken("rt-old", NOW - timedelta(days=25, hours=1)))

    _settle(settings, _end("ok"))
    _settle(settings, _end("ok"), NOW + timedelta(hours=1))
    store.save(StoredToken("rt-new", NOW))
    _settle(settings, _end("ok"), NOW + timedelta(hours=2))

    assert receiver.titles() == [
        "goto-retention: refresh token not renewed for 25 days",
        "goto-retention: resolved: refresh token not renewed for 25 days",
    ]
    assert "retention auth login" in str(receiver.received[0]["message"])
    assert "rt-old" not in str(receiver.received)


def test_a_young_token_says_nothing(tmp_path: Path, receiver: Any) -> None:
    settings = Settings(state_dir=tmp_path, notify=receiver.url)  # type: ignore[arg-type]
    TokenStore.in_state_dir(tmp_path).save(StoredToken("rt", NOW - timedelta(days=24)))

    _settle(settings, _end("ok"))

    assert receiver.received == []


def test_a_halted_run_alerts_with_its_counts(tmp_path: Path, receiver: Any) -> None:
    settings = Settings(state_dir=tmp_path, notify=receiver.url)  # type: ignore[arg-type]

    _settle(settings, _end("halted"))

    assert receiver.titles() == ["goto-retention: run halted"]
    body = str(receiver.received[0]["message"])
    assert "run: run-1 (run)" in body
    assert "3 planned, 1 deleted" in body


def test_a_declined_run_alerts_nothing(tmp_path: Path, receiver: Any) -> None:
    settings = Settings(state_dir=tmp_path, notify=receiver.url)  # type: ignore[arg-type]
    declined = Refused("cancelled, nothing removed", reason="declined")

    _settle(settings, _end("declined", declined))

    assert receiver.received == []


def test_each_refusal_reason_is_its_own_condition(tmp_path: Path, receiver: Any) -> None:
    settings = Settings(state_dir=tmp_path, notify=receiver.url)  # type: ignore[arg-type]

    _settle(settings, _end("refused", Refused("over", hint="raise it", reason="cap")))
    _settle(settings, _end("refused", Refused("skew", reason="clock_skew")))
    _settle(settings, _end("refused", Refused("over", reason="cap")), NOW + timedelta(hours=1))
    _settle(settings, _end("ok"), NOW + timedelta(hours=2))

    assert receiver.titles()[:2] == [
        "goto-retention: run refused (cap)",
        "goto-retention: run refused (clock_skew)",
    ]
    assert sorted(receiver.titles()[2:]) == [
        "goto-retention: resolved: run refused (cap)",
        "goto-retention: resolved: run refused (clock_skew)",
    ]
    assert "hint: raise it" in str(receiver.received[0]["message"])
