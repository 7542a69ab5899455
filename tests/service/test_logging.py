"""Secrets never reach log output, whatever the route: fields, nesting, exceptions, headers."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime

import pytest
import structlog
from structlog.testing import capture_logs

from retention.service.logging import RunSummary, log_run_summary, redact_processor

CLIENT_SECRET = "canary-client-secret-7d1e0c"
REFRESH_TOKEN = "canary-refresh-token-94b2aa"
ACCESS_TOKEN = "canary-access-token-3f6c51"
UNREGISTERED = "canary-unregistered-bearer-c0ffee"
CANARIES = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN, UNREGISTERED)

# Logs every way a secret could leak: as a field, nested, in an exception message, in an
# Authorization header (also one never registered), from a stdlib logger and a retry hook.
CHILD = f"""
import logging, sys
import structlog, tenacity
from retention.settings import load_settings
from retention.service.logging import configure_logging, register_secret, register_settings_secrets

configure_logging(stream=sys.stdout, json=sys.argv[1] == "json")
register_settings_secrets(load_settings())
register_secret({ACCESS_TOKEN!r})  # as the client does with each access token it obtains
log = structlog.get_logger("retention.test")
log.info("fields", client_secret={CLIENT_SECRET!r}, note="secret is {REFRESH_TOKEN}")
log.info("nested", request={{"headers": {{"Authorization": "Bearer {UNREGISTERED}"}},
                            "body": {{"refresh_token": {REFRESH_TOKEN!r}}}}},
         attempts=[{{"access_token": {ACCESS_TOKEN!r}}}])
log.warning("header Authorization: Bearer {UNREGISTERED} in text")
try:
    raise RuntimeError("token refresh failed for {REFRESH_TOKEN} with {ACCESS_TOKEN}")
except RuntimeError:
    log.exception("refresh crashed")
logging.getLogger("retention.goto").warning(
    "GET ?access_token=%s answered 403", {ACCESS_TOKEN!r}, exc_info=ValueError({CLIENT_SECRET!r})
)

def flaky():
    raise ConnectionError("reset while sending Authorization: Bearer {ACCESS_TOKEN}")

retrying = tenacity.Retrying(
    stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_none(), reraise=True,
    before_sleep=tenacity.before_sleep_log(logging.getLogger("retention.goto"), logging.WARNING,
                                           exc_info=True),
)
try:
    retrying(flaky)
except ConnectionError:
    log.error("gave up", exc_info=True)
"""

EVENTS = ["fields", "nested", "refresh crashed", "gave up"]


def run_child(mode: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")},
        "RETENTION_CLIENT_SECRET": CLIENT_SECRET,
        "RETENTION_REFRESH_TOKEN": REFRESH_TOKEN,
    }
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", CHILD, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


@pytest.mark.e2e
def test_secret_canaries_never_appear_in_json_log_output() -> None:
    result = run_child("json")
    output = result.stdout + result.stderr
    for canary in CANARIES:
        assert canary not in output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["event"] for line in lines if line["event"] in EVENTS] == EVENTS
    retry_lines = [line for line in lines if line["event"].startswith("Retrying ")]
    assert len(retry_lines) == 1
    assert "Authorization: Bearer ***" in retry_lines[0]["event"]
    crashed = next(line for line in lines if line["event"] == "refresh crashed")
    assert "RuntimeError: token refresh failed for *** with ***" in crashed["exception"]
    fields = lines[0]
    assert fields["client_secret"] == "***"
    assert fields["note"] == "secret is ***"


@pytest.mark.e2e
def test_secret_canaries_never_appear_in_console_log_output() -> None:
    result = run_child("console")
    output = result.stdout + result.stderr
    for canary in CANARIES:
        assert canary not in output
    for event in EVENTS:
        assert event in result.stdout
    assert "RuntimeError: token refresh failed for *** with ***" in result.stdout


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("token_url", "https://authentication.logmeininc.com/oauth/token", None),
        ("status_code", 403, None),
        ("int_err_code", "InvalidToken", None),
        ("refresh_token_age_s", 3600, None),
        ("code", "oauth-code-value", "***"),
        ("X-Api-Key", "abc123456", "***"),
        ("Set-Cookie", "session=abc", "***"),
        ("signing_key", "-----BEGIN PRIVATE KEY-----", "***"),
    ],
)
def test_only_secret_field_names_are_masked(key: str, value: object, expected: str | None) -> None:
    redacted = redact_processor(None, "info", {key: value})
    assert redacted[key] == (value if expected is None else expected)


def test_run_summary_is_one_line_at_error_level_when_the_run_failed() -> None:
    summary = RunSummary(
        run_id="run-42",
        result="failed",
        started_at=datetime(2024, 5, 1, 3, 0, tzinfo=UTC),
        finished_at=datetime(2024, 5, 1, 3, 0, 7, 500000, tzinfo=UTC),
        counts={"deleted": 12, "failed": 3},
        error="circuit breaker opened",
    )
    with capture_logs() as captured:
        log_run_summary(summary, structlog.get_logger("retention.run"))
    assert captured == [
        {
            "event": "run finished",
            "log_level": "error",
            "run_id": "run-42",
            "result": "failed",
            "dry_run": False,
            "started_at": "2024-05-01T03:00:00+00:00",
            "finished_at": "2024-05-01T03:00:07.500000+00:00",
            "duration_s": 7.5,
            "counts": {"deleted": 12, "failed": 3},
            "error": "circuit breaker opened",
        }
    ]


def test_dry_run_summary_says_so_in_its_event() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    summary = RunSummary(run_id="r", result="ok", started_at=at, finished_at=at, dry_run=True)
    with capture_logs() as captured:
        log_run_summary(summary)
    assert captured[0]["event"] == "run finished (dry run)"
    assert captured[0]["log_level"] == "info"


AUTO_FORMAT = """
import sys, structlog
from retention.service.logging import configure_logging
configure_logging(stream=sys.stdout)
structlog.get_logger("retention.test").info("format chosen")
"""


@pytest.mark.e2e
def test_output_is_json_off_a_terminal_and_console_on_one() -> None:
    piped = subprocess.run(
        [sys.executable, "-c", AUTO_FORMAT], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(piped.stdout)["event"] == "format chosen"
    controller, terminal = pty.openpty()
    try:
        subprocess.run([sys.executable, "-c", AUTO_FORMAT], stdout=terminal, timeout=60, check=True)
        on_terminal = os.read(controller, 65536).decode()
    finally:
        os.close(controller)
        os.close(terminal)
    assert "format chosen" in on_terminal
    assert not on_terminal.lstrip().startswith("{")
