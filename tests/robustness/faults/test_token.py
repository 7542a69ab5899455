"""Token trouble: access tokens living 2 s with rotation, and a crash during a token refresh.

Short-lived tokens must cost no removal (zero items fail for auth). A crash after a rotated
refresh token was received but before it was stored loses that token: the next run refuses with
the auth error and its hint, sends no DELETE, and `auth login` puts things right. A crash after
it was stored loses nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

FAILPOINTS = "RETENTION_FAILPOINTS"
KILLED = -9


def token_requests(dep: Any, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in dep.requests(since) if r["path"].endswith("/oauth/token")]


def refused_for_token(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """API requests the sandbox answered 403 (its answer to an expired or unknown token)."""
    return [r for r in entries if r["path"].startswith("/G2M/rest") and r["status"] == 403]


def short_tokens_apply(stage: Any, *, days: str, per_day: str, rate: str) -> None:
    dep = stage("--days", days, "--sessions-per-day", per_day, "--token-ttl", "2")
    dep.env["RETENTION_RATE_LIMIT"] = rate
    items = dep.plan()
    mark = len(dep.requests())

    done = dep.cli("apply", str(dep.root / "plan.json"), "--yes")

    assert done.returncode == 0, done.stderr[-2000:]
    recovery = dep.assert_recovered(items)
    assert recovery.outcomes == Counter(deleted=len(items))
    applied = dep.requests(mark)
    refreshes = token_requests(dep, mark)
    assert len(refreshes) >= 3, "the apply outlived several access tokens"
    assert {r["status"] for r in refreshes} == {200}
    refused = refused_for_token(applied)
    assert refused == [], "no request goes out with an expired token"
    print(
        f"\nFIGURES token items={len(items)} refreshes={len(refreshes)} "
        f"api_403={len(refused)} max_deletes_per_item={recovery.max_deletes_per_item}"
    )


def test_access_tokens_living_2s_with_rotation_cost_no_removal(stage: Any) -> None:
    short_tokens_apply(stage, days="90", per_day="4", rate="60")


@pytest.mark.e2e
@pytest.mark.torture
def test_torture_1000_item_apply_with_2s_tokens_and_rotation_fails_nothing_for_auth(
    stage: Any,
) -> None:
    short_tokens_apply(stage, days="130", per_day="10", rate="50")


def login_again(dep: Any) -> None:
    """`retention auth login --code` with a code from the sandbox's authorize endpoint."""
    redirect = "http://127.0.0.1:8765/callback"
    answer = httpx.get(
        dep.server.base_url + "/oauth/authorize",
        params={"client_id": dep.server.client_id, "redirect_uri": redirect, "state": "s"},
        follow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    done = dep.cli("auth", "login", "--code", answer.headers["location"])
    assert done.returncode == 0, done.stderr


def killed_at_second_refresh(stage: Any, failpoint: str) -> tuple[Any, list[Any], int]:
    """An apply killed at `failpoint` of its second token refresh, which comes mid-execution
    with removals in flight: the stage, the plan's items and the requests made by then."""
    dep = stage("--days", "60", "--sessions-per-day", "4", "--token-ttl", "2")
    dep.env["RETENTION_RATE_LIMIT"] = "40"
    items = dep.plan()
    crashed = dep.cli(
        "apply",
        str(dep.root / "plan.json"),
        "--yes",
        extra_env={FAILPOINTS: f"{failpoint}=2"},
        process=True,
    )
    assert crashed.returncode == KILLED, crashed.stderr[-2000:]
    return dep, items, len(dep.requests())


@pytest.mark.e2e
def test_crash_before_a_rotated_refresh_token_is_stored_refuses_next_run_until_login(
    stage: Any,
) -> None:
    dep, items, mark = killed_at_second_refresh(stage, "before_token_persist")

    refused = dep.cli("run", "--yes")

    assert refused.returncode == 1
    assert "the token endpoint refused the grant (invalid_grant)" in refused.stderr
    assert "run `retention auth login`" in refused.stderr
    assert "Traceback" not in refused.stderr
    after = dep.requests(mark)
    assert [r["method"] for r in after] == ["POST"], "one token request, then nothing"
    assert dep.deletes(mark) == []

    login_again(dep)
    finished = dep.cli("run", "--yes")
    assert finished.returncode == 0, finished.stderr[-2000:]
    dep.assert_recovered(items)


@pytest.mark.e2e
def test_crash_after_a_rotated_refresh_token_is_stored_loses_nothing(stage: Any) -> None:
    dep, items, mark = killed_at_second_refresh(stage, "after_token_persist")

    finished = dep.cli("run", "--yes")

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert refused_for_token(dep.requests(mark)) == []
    dep.assert_recovered(items)
