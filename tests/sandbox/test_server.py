"""The sandbox as a real server on loopback: startup, tokens, drops, hangs, limits, data files."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import TLS, invoke_retention

from retention.sandbox import load_account

NOW = "2026-11-23T00:00:00Z"
WINDOW = {"startDate": "2026-10-01T00:00:00Z", "endDate": NOW}


@pytest.mark.e2e
def test_serves_history_with_a_token_from_the_token_endpoint(sandbox_process: Any) -> None:
    server = sandbox_process("--seed", "1", "--now", NOW)
    assert server.base_url.startswith("http://127.0.0.1:")
    deadline = time.monotonic() + 10  # the summary follows the first line
    while not any("refresh token:" in line for line in server.output):
        assert time.monotonic() < deadline, server.output
        time.sleep(0.05)
    assert "refresh token: sandbox-refresh" in server.output
    token = server.access_token()
    response = httpx.get(
        f"{server.api_url}/organizers/1001/historicalMeetings",
        params=WINDOW,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200
    assert response.json()
    log = server.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", "/oauth/token", 200),
        ("GET", "/G2M/rest/organizers/1001/historicalMeetings", 200),
    ]
    assert server.state()["organizers"] == 20


def test_expired_token_answers_403_invalid_token(sandbox: Any) -> None:
    server = sandbox("--token-ttl", "1", "--now", NOW)
    headers = {"Authorization": f"Bearer {server.access_token()}"}
    time.sleep(1.1)
    response = httpx.get(f"{server.api_url}/groups", headers=headers, verify=TLS)
    assert response.status_code == 403
    assert response.json() == {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}


def _outcomes(server: Any, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {server.access_token()}"}
    outcomes = []
    for _ in range(count):
        try:
            answer = httpx.get(f"{server.api_url}/groups", headers=headers, verify=TLS)
            outcomes.append(str(answer.status_code))
        except httpx.RemoteProtocolError:
            outcomes.append("dropped")
    return outcomes


def test_dropped_connections_reach_the_client_and_follow_the_seed(sandbox: Any) -> None:
    first = _outcomes(sandbox("--fault-rate", "0.6", "--seed", "5", "--organizers", "3"), 20)
    second = _outcomes(sandbox("--fault-rate", "0.6", "--seed", "5", "--organizers", "3"), 20)
    assert first == second
    assert "dropped" in first


def test_hang_blocks_api_requests_until_released(sandbox: Any) -> None:
    server = sandbox("--organizers", "3")
    headers = {"Authorization": f"Bearer {server.access_token()}"}
    server.control(hang=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.api_url}/groups", headers=headers, timeout=0.5, verify=TLS)
    server.control(hang=False)
    assert httpx.get(f"{server.api_url}/groups", headers=headers, verify=TLS).status_code == 200


def test_rate_limit_flag_without_retry_after(sandbox: Any) -> None:
    server = sandbox("--rate-limit", "2", "--no-retry-after", "--organizers", "3")
    headers = {"Authorization": f"Bearer {server.access_token()}"}
    with httpx.Client(headers=headers, verify=TLS) as client:
        answers = [client.get(f"{server.api_url}/groups") for _ in range(20)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert all("retry-after" not in a.headers for a in refused)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return invoke_retention(*args)


def test_generate_round_trips_through_data(sandbox: Any, tmp_path: Path) -> None:
    shape = ("--seed", "4", "--organizers", "6", "--days", "20", "--now", NOW)
    out = tmp_path / "account.json"
    done = run_cli("sandbox", "generate", "--out", str(out), *shape)
    assert done.returncode == 0, done.stderr
    generated = sandbox(*shape).state()
    served = sandbox("--data", str(out)).state()
    assert served == generated
    sessions = load_account(out).sessions
    assert set(generated["session_ids"]) <= set(sessions)
    assert len(sessions) == generated["sessions"] + generated["ongoing"] + generated["upcoming"]


def test_bad_data_file_exits_2_naming_file_and_entry(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "accountKey": "1",
                "groups": [{"groupKey": 10, "groupName": "Sales"}],
                "organizers": [
                    {
                        "organizerKey": 1,
                        "email": "a@example.com",
                        "firstName": "A",
                        "lastName": "B",
                        "groupKey": 10,
                    }
                ],
                "meetings": [
                    {"meetingId": 5, "organizerKey": 1, "subject": "S", "meetingType": "weekly"}
                ],
                "sessions": [
                    {
                        "sessionId": 7,
                        "meetingId": 5,
                        "startTime": "2026-13-01T00:00:00Z",
                        "endTime": "",
                    }
                ],
            }
        )
    )
    done = run_cli("sandbox", "--data", str(bad), "--port", "0")
    assert done.returncode == 2
    assert f"{bad}: meetings[0] (meetingId 5): 'meetingType' must be one of" in done.stderr
    assert f"{bad}: sessions[0] (sessionId 7): startTime:" in done.stderr
    assert "Traceback" not in done.stderr
