"""The alert state machine on a real state database: once per repeat window, once resolved;
an undeliverable URL counted in `retention_notify_failures_total`; secrets in URLs masked."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from retention.alerts import deliver
from retention.alerts.conditions import Alert, alert, cleared, raised, resolve
from retention.engine.state import open_state_db
from retention.service.logging import redact_text
from retention.service.metrics import Metrics
from retention.service.runmetrics import absorb_record
from retention.settings import Settings
from retention.times import repeat_seconds

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
REFUSED = Alert("run:refused:cap", "run refused (cap)", "run: r1\nreason: cap")


def test_a_condition_goes_out_once_per_window_then_again(tmp_path: Path) -> None:
    db = open_state_db(tmp_path / "state.db")
    window = timedelta(hours=24)

    assert raised(db, REFUSED, T0, window) is not None
    assert raised(db, REFUSED, T0 + timedelta(hours=23), window) is None
    later = raised(db, REFUSED, T0 + timedelta(hours=24), window)
    assert later is not None
    assert "still" in later.title
    assert raised(db, REFUSED, T0 + timedelta(hours=25), window) is None


def test_a_cleared_condition_resolves_once_and_may_begin_again(tmp_path: Path) -> None:
    db = open_state_db(tmp_path / "state.db")
    raised(db, REFUSED, T0, timedelta(hours=24))
    raised(db, Alert("witness", "witness", "w"), T0, timedelta(hours=24))

    first = cleared(db, ["run:"], "run r2 ended ok")
    assert [m.title for m in first] == ["goto-retention: resolved: run refused (cap)"]
    assert cleared(db, ["run:"], "run r3 ended ok") == []
    assert raised(db, REFUSED, T0 + timedelta(minutes=1), timedelta(hours=24)) is not None


def test_other_conditions_stay_when_one_clears(tmp_path: Path) -> None:
    db = open_state_db(tmp_path / "state.db")
    raised(db, REFUSED, T0, timedelta(hours=24))
    raised(db, Alert("run:failed:failure", "run failed", "f"), T0, timedelta(hours=24))

    gone = cleared(db, ["run:"], "", keep=frozenset({"run:failed:failure"}))

    assert [m.title for m in gone] == ["goto-retention: resolved: run refused (cap)"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_undeliverable_alert_is_counted_and_never_raises(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, notify=f"json://127.0.0.1:{_closed_port()}/alerts")  # type: ignore[arg-type]
    db = open_state_db(settings.state_db)
    metrics = Metrics()
    before = deliver.FAILURES.total

    sent = alert(settings, db, REFUSED, now=T0)

    assert sent is False
    assert deliver.FAILURES.total == before + 1
    absorb_record(metrics, [], [], None)
    assert b"retention_notify_failures_total" in metrics.render()
    assert resolve(settings, db, ["run:"]) == 0
    assert deliver.FAILURES.total == before + 2


def test_no_url_sends_nothing_and_keeps_no_state(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    db = open_state_db(settings.state_db)

    assert alert(settings, db, REFUSED, now=T0) is False
    assert list(db.query("SELECT * FROM alert_conditions")) == []


def test_secrets_in_alert_urls_are_masked(tmp_path: Path) -> None:
    urls = "mailtos://ops:Sup3rS3cretPass@mail.example.com, discord://1234/AbCdEfGhIjKlMnOp"
    settings = Settings(state_dir=tmp_path, notify=urls)  # type: ignore[arg-type]

    deliver.notify_urls(settings)

    masked = redact_text(f"failed: {urls}; Sup3rS3cretPass AbCdEfGhIjKlMnOp")
    assert "Sup3rS3cretPass" not in masked
    assert "AbCdEfGhIjKlMnOp" not in masked


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("90m", 5400), ("3600", 3600), ("30s", 30)]
)
def test_repeat_durations(text: str, seconds: float) -> None:
    assert repeat_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "soon", "24 hours"])
def test_bad_repeat_is_a_settings_error(text: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        repeat_seconds(text)


def test_notify_urls_never_in_the_settings_file(tmp_path: Path, monkeypatch: Any) -> None:
    from retention.errors import SettingsError  # noqa: PLC0415
    from retention.settings import load_settings  # noqa: PLC0415

    toml = tmp_path / "retention.toml"
    toml.write_text('notify = "json://localhost/x"\n')
    monkeypatch.setenv("RETENTION_CONFIG", str(toml))

    with pytest.raises(SettingsError, match="notify_urls"):
        load_settings()
