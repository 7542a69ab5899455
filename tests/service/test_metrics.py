"""Metrics and health over real loopback HTTP: the exposition parses, /healthz flips to 503."""

from __future__ import annotations

import math
import signal
import socket
from datetime import UTC, datetime, timedelta
from importlib.metadata import version

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from retention.errors import RuntimeFailure, SettingsError
from retention.service.logging import register_secret
from retention.service.metrics import HealthState, Metrics, parse_address, serve_metrics

SESSIONS = "/organizers/{organizerKey}/historicalMeetings"


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a text exposition, keyed by name and label set."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


@pytest.mark.anyio
async def test_metrics_served_over_http_parse_and_carry_every_update() -> None:
    metrics = Metrics()
    metrics.observe_api_request(SESSIONS, 200)
    metrics.observe_api_request(SESSIONS, 429)
    metrics.observe_retry(SESSIONS)
    metrics.observe_removal("delete_session", "deleted", "two-years")
    metrics.observe_removal("delete_session", "deleted", "two-years")
    metrics.observe_removal("delete_recordings", "failed", "recordings-90d")
    metrics.observe_scanned(120)
    metrics.set_pending_intents(3)
    metrics.record_run("ok", datetime(2024, 5, 1, 3, 0, 5, tzinfo=UTC), 5.5)
    metrics.set_next_run(datetime(2024, 5, 2, 3, 0, tzinfo=UTC))
    async with (
        serve_metrics("127.0.0.1:0", metrics, HealthState()) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as client,
    ):
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    found = samples(response.text)
    assert found[key("retention_api_requests_total", endpoint=SESSIONS, status="200")] == 1
    assert found[key("retention_api_requests_total", endpoint=SESSIONS, status="429")] == 1
    assert found[key("retention_api_rate_limited_total", endpoint=SESSIONS)] == 1
    assert found[key("retention_api_retries_total", endpoint=SESSIONS)] == 1
    deleted = key(
        "retention_removals_total", action="delete_session", outcome="deleted", policy="two-years"
    )
    assert found[deleted] == 2
    failed = key(
        "retention_removals_total",
        action="delete_recordings",
        outcome="failed",
        policy="recordings-90d",
    )
    assert found[failed] == 1
    assert found[key("retention_scan_sessions_total")] == 120
    assert found[key("retention_pending_intents")] == 3
    assert found[key("retention_runs_total", result="ok")] == 1
    assert found[key("retention_last_run_result", retention_last_run_result="ok")] == 1
    assert found[key("retention_last_run_result", retention_last_run_result="failed")] == 0
    assert found[key("retention_last_run_timestamp_seconds")] == 1714532405.0
    assert found[key("retention_last_run_duration_seconds")] == 5.5
    assert found[key("retention_next_run_timestamp_seconds")] == 1714618800.0


def test_refresh_token_age_is_computed_from_the_clock_at_each_scrape() -> None:
    now = datetime(2024, 5, 1, tzinfo=UTC)
    metrics = Metrics(clock=lambda: now)
    assert math.isnan(
        samples(metrics.render().decode())[key("retention_refresh_token_age_seconds")]
    )
    metrics.set_refresh_token_issued(now - timedelta(days=2))
    assert samples(metrics.render().decode())[key("retention_refresh_token_age_seconds")] == 172800
    now += timedelta(hours=1)
    assert samples(metrics.render().decode())[key("retention_refresh_token_age_seconds")] == 176400


def test_metrics_carry_the_build_info_and_the_process_collector() -> None:
    found = samples(Metrics().render().decode())
    assert found[key("retention_build_info", version=version("goto-retention"))] == 1
    names = {name for name, _labels in found}
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total"} <= names
    assert "process_open_fds" in names
    assert "python_info" in names


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.observe_scanned(5)
    assert samples(second.render().decode())[key("retention_scan_sessions_total")] == 0


@pytest.mark.anyio
async def test_healthz_flips_to_503_when_the_last_run_fails_and_back_when_one_succeeds() -> None:
    health = HealthState(scheduler_running=True)
    async with (
        serve_metrics("127.0.0.1:0", Metrics(), health) as (host, port),
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as client,
    ):
        before = await client.get("/healthz")
        health.last_run_result = "failed"
        health.last_error = "GET /organizers answered 500"
        failing = await client.get("/healthz")
        health.last_run_result = "ok"
        health.last_error = None
        recovered = await client.get("/healthz")
    assert before.status_code == 200
    assert before.json()["status"] == "ok"
    assert failing.status_code == 503
    assert failing.json()["problems"] == ["last run failed"]
    assert failing.json()["last_run"]["error"] == "GET /organizers answered 500"
    assert recovered.status_code == 200


@pytest.mark.anyio
async def test_healthz_is_503_while_the_scheduler_is_not_running() -> None:
    async with (
        serve_metrics("127.0.0.1:0", Metrics(), HealthState(scheduler_running=False)) as (h, p),
        httpx.AsyncClient(base_url=f"http://{h}:{p}") as client,
    ):
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["problems"] == ["scheduler is not running"]


def test_a_refused_run_is_unhealthy_with_its_reason_until_a_run_succeeds() -> None:
    health = HealthState(scheduler_running=True)
    at = datetime(2026, 11, 23, 3, tzinfo=UTC)
    health.record_run("refused", at, "the audit record cannot be verified", "audit_unverified")
    refused = health.report()
    assert refused["status"] == "unhealthy"
    assert refused["problems"] == ["last run refused: audit_unverified"]
    assert refused["last_run"]["reason"] == "audit_unverified"
    health.record_run("ok", at, None, None)
    assert health.report()["status"] == "ok"
    assert health.report()["last_run"]["reason"] is None


def test_healthz_error_text_never_carries_a_secret() -> None:
    canary = "canary-health-5f1c2b9e"
    register_secret(canary)
    health = HealthState(last_run_result="failed", last_error=f"token {canary} was refused")
    assert canary not in str(health.report())


@pytest.mark.anyio
async def test_serving_leaves_the_daemons_signal_handlers_alone() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    async with serve_metrics("127.0.0.1:0", Metrics(), HealthState()):
        during = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert during == before


@pytest.mark.anyio
async def test_port_is_free_again_once_serving_ends() -> None:
    async with serve_metrics("127.0.0.1:0", Metrics(), HealthState()) as (host, port):
        pass
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect((host, port))


@pytest.mark.anyio
async def test_a_taken_port_is_reported_naming_the_setting() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeFailure) as failed:
            async with serve_metrics(f"127.0.0.1:{port}", Metrics(), HealthState()):
                pytest.fail("served on a port already in use")
    assert "RETENTION_METRICS_ADDRESS" in failed.value.message
    assert f"127.0.0.1:{port}" in failed.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464))],
)
def test_metrics_address_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["9464", "localhost:", ":9464", "localhost:99999", ""])
def test_invalid_metrics_address_is_an_error_naming_the_setting(text: str) -> None:
    with pytest.raises(SettingsError) as invalid:
        parse_address(text)
    assert invalid.value.message.startswith("RETENTION_METRICS_ADDRESS: ")
    assert invalid.value.exit_code == 2
