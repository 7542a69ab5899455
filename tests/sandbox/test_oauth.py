"""OAuth: client authentication, refresh-token rotation, expiry, revocation, the code flow."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.anyio
CLIENT = ("sandbox-client", "sandbox-secret")
INVALID_TOKEN = {"int_err_code": "InvalidToken", "msg": "Invalid token passed"}


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def refresh(client: Any, token: str, auth: Any = CLIENT) -> Any:
    return await client.post(
        "/oauth/token", auth=auth, data={"grant_type": "refresh_token", "refresh_token": token}
    )


async def test_refresh_returns_a_goto_shaped_token_for_the_admin(tiny: Any) -> None:
    async with tiny.client(authorized=False) as client:
        body = (await refresh(client, "sandbox-refresh")).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert (body["organizer_key"], body["account_key"]) == ("1001", "7000001")
    assert body["principal"] == body["email"] == "ana@example.com"
    assert (body["firstName"], body["lastName"]) == ("Ana", "Lee")


async def test_rotation_kills_the_old_refresh_token_at_once(tiny: Any) -> None:
    async with tiny.client(authorized=False) as client:
        first = (await refresh(client, "sandbox-refresh")).json()
        assert first["refresh_token"] != "sandbox-refresh"
        again = await refresh(client, "sandbox-refresh")
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
        assert (await refresh(client, first["refresh_token"])).status_code == 200


async def test_without_rotation_the_refresh_token_stays(
    sandbox_asgi: Any, tiny_account: Any
) -> None:
    sandbox = sandbox_asgi(tiny_account(), rotate_refresh_tokens=False)
    async with sandbox.client(authorized=False) as client:
        body = (await refresh(client, "sandbox-refresh")).json()
        assert body["refresh_token"] == "sandbox-refresh"
        assert (await refresh(client, "sandbox-refresh")).status_code == 200


@pytest.mark.parametrize("auth", [("sandbox-client", "wrong"), ("other", "sandbox-secret"), None])
async def test_bad_client_credentials_answer_401_invalid_client(tiny: Any, auth: Any) -> None:
    async with tiny.client(authorized=False) as client:
        response = await refresh(client, "sandbox-refresh", auth=auth)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


async def test_unknown_grant_type_is_refused(tiny: Any) -> None:
    async with tiny.client(authorized=False) as client:
        response = await client.post("/oauth/token", auth=CLIENT, data={"grant_type": "password"})
    assert (response.status_code, response.json()["error"]) == (400, "unsupported_grant_type")


async def test_access_token_expires_after_its_ttl(sandbox_asgi: Any, tiny_account: Any) -> None:
    clock = FakeClock()
    sandbox = sandbox_asgi(tiny_account(), token_ttl=60, clock=clock)
    async with sandbox.client(authorized=False) as client:
        token = (await refresh(client, "sandbox-refresh")).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        clock.now += 59
        assert (await client.get("/G2M/rest/groups", headers=headers)).status_code == 200
        clock.now += 1
        expired = await client.get("/G2M/rest/groups", headers=headers)
    assert expired.status_code == 403
    assert expired.json() == INVALID_TOKEN


async def test_revoke_tokens_expires_every_access_token(tiny: Any) -> None:
    async with tiny.client() as client:
        assert (await client.get("/G2M/rest/groups")).status_code == 200
        await client.post("/_sandbox/control", json={"revoke_tokens": True})
        response = await client.get("/G2M/rest/groups")
        assert (response.status_code, response.json()) == (403, INVALID_TOKEN)
        assert (await refresh(client, "sandbox-refresh")).status_code == 200


async def test_token_ttl_control_applies_to_new_tokens(tiny: Any) -> None:
    async with tiny.client() as client:
        await client.post("/_sandbox/control", json={"token_ttl": 5})
        assert (await refresh(client, "sandbox-refresh")).json()["expires_in"] == 5


async def test_authorization_code_flow_gives_tokens_once(tiny: Any) -> None:
    async with tiny.client(authorized=False) as client:
        response = await client.get(
            "/oauth/authorize",
            params={
                "client_id": "sandbox-client",
                "response_type": "code",
                "redirect_uri": "http://127.0.0.1:9/callback",
                "state": "xyz",
            },
        )
        assert response.status_code == 302
        location = urlsplit(response.headers["location"])
        assert (location.netloc, location.path) == ("127.0.0.1:9", "/callback")
        query = parse_qs(location.query)
        assert query["state"] == ["xyz"]
        form = {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": "http://127.0.0.1:9/callback",
        }
        granted = await client.post("/oauth/token", auth=CLIENT, data=form)
        assert granted.status_code == 200
        token = granted.json()["access_token"]
        assert (
            await client.get("/G2M/rest/groups", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200
        reused = await client.post("/oauth/token", auth=CLIENT, data=form)
        assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
        assert (await refresh(client, granted.json()["refresh_token"])).status_code == 200


async def test_authorize_refuses_unknown_client(tiny: Any) -> None:
    async with tiny.client(authorized=False) as client:
        response = await client.get(
            "/oauth/authorize", params={"client_id": "x", "redirect_uri": "http://h/cb"}
        )
    assert response.status_code == 400
