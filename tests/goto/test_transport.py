"""The client's transport rules: answer caps, JSON depth, clock skew, stop, masking, URL checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from retention.errors import SettingsError
from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.errors import (
    ApiError,
    AuthError,
    MalformedResponse,
    ResponseTooLarge,
    Stopped,
)
from retention.goto.factory import client_from_settings
from retention.goto.tokenstore import TokenStore
from retention.service.context import RunContext
from retention.service.context import client as client_of
from retention.settings import Settings

pytestmark = pytest.mark.anyio

SECRET = "client-secret-value"
REFRESH = "refresh-token-value"
ACCESS = "access-token-value"
API = "https://api.test/G2M/rest"
TOKEN_URL = "https://auth.test/oauth/token"


class FakeApi:
    """An in-memory API and token endpoint; `api` answers every API request."""

    def __init__(self, api: Callable[[httpx.Request], httpx.Response]) -> None:
        self.api = api
        self.token_date: datetime | None = None
        self.token_answer: Callable[[httpx.Request], httpx.Response] | None = None
        self.api_requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            if self.token_answer is not None:
                return self.token_answer(request)
            date = self.token_date
            headers = {"Date": format_datetime(date, usegmt=True)} if date else {}
            body = {
                "access_token": ACCESS,
                "refresh_token": REFRESH,
                "expires_in": 3600,
                "account_key": "7000042",
            }
            return httpx.Response(200, json=body, headers=headers)
        self.api_requests += 1
        return self.api(request)


def make_client(fake: FakeApi, tmp_path: Path, **options: Any) -> GoToClient:
    transport = httpx.MockTransport(fake.handle)
    stop = options.pop("stop", None)
    auth = TokenManager(
        TOKEN_URL,
        "client-id",
        SecretStr(SECRET),
        TokenStore(tmp_path / "token.json"),
        SecretStr(REFRESH),
        transport=transport,
        stop=stop,
        sleep=_instant,
    )
    return GoToClient(API, auth, 1000.0, stop=stop, sleep=_instant, **options)


async def _instant(_seconds: float) -> None:
    await asyncio.sleep(0)


def _secrets_absent(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:
        text = " ".join([str(seen), *map(str, seen.args)])
        for secret in (SECRET, REFRESH, ACCESS, "Basic "):
            assert secret not in text
        seen = seen.__cause__ or seen.__context__


async def test_an_answer_over_the_cap_fails_its_call_without_being_read_whole(tmp_path):
    chunks_sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        while True:  # 300 MB and more: the client must stop reading
            chunks_sent += 1
            yield b"[" + b" " * 65_535

    fake = FakeApi(lambda _request: httpx.Response(200, content=endless()))
    async with make_client(fake, tmp_path, max_response_bytes=1_000_000) as client:
        with pytest.raises(ResponseTooLarge) as raised:
            await client.groups()
    assert raised.value.path == "/groups"
    assert "/groups" in str(raised.value)
    assert chunks_sent <= 20
    assert fake.api_requests == 1, "a retry would only read the same answer again"


async def test_an_answer_declaring_a_length_over_the_cap_is_refused_before_reading(tmp_path):
    fake = FakeApi(lambda _request: httpx.Response(200, content=b"[]" + b" " * 5000))
    async with make_client(fake, tmp_path, max_response_bytes=1024) as client:
        with pytest.raises(ResponseTooLarge):
            await client.organizers()


async def test_an_answer_nested_ten_thousand_deep_is_malformed_not_a_recursion_error(tmp_path):
    deep = b"[" * 10_000 + b"]" * 10_000
    fake = FakeApi(lambda _request: httpx.Response(200, content=deep))
    async with make_client(fake, tmp_path) as client:
        with pytest.raises(MalformedResponse) as raised:
            await client.groups()
    assert "nested too deeply" in str(raised.value)


async def test_clock_skew_and_account_key_come_from_the_api_and_token_answers(tmp_path):
    server_now = datetime.now(UTC) - timedelta(days=3)
    fake = FakeApi(
        lambda _request: httpx.Response(
            200, json=[], headers={"Date": format_datetime(server_now, usegmt=True)}
        )
    )
    fake.token_date = datetime.now(UTC) + timedelta(hours=1)
    async with make_client(fake, tmp_path) as client:
        assert client.clock_skew_seconds() is None
        await client.auth.access_token()
        assert client.clock_skew_seconds() == pytest.approx(-3600, abs=5)
        assert client.account_key == "7000042"
        await client.groups()
        skew = client.clock_skew_seconds()
    assert skew == pytest.approx(3 * 86_400, abs=5)


async def test_clock_skew_of_the_sandbox_over_loopback_is_small(sandbox, tmp_path):
    server = sandbox()
    auth = TokenManager(
        server.token_url,
        server.client_id,
        SecretStr(server.client_secret),
        TokenStore(tmp_path / "token.json"),
        SecretStr(server.refresh_token),
    )
    async with GoToClient(server.api_url, auth, 10.0) as client:
        await client.groups()
        skew = client.clock_skew_seconds()
        account_key = client.account_key
    assert skew is not None
    assert abs(skew) < 5
    assert account_key is not None
    assert account_key.isdigit()


def run_context(fake: FakeApi, tmp_path: Path, **changes: Any) -> RunContext:
    """A run's context on the fake API: its client is stopped by the run's stop, `ctx.stop`."""
    settings = Settings(
        api_base_url=API,
        token_url=TOKEN_URL,
        client_id="client-id",
        client_secret=SecretStr(SECRET),
        refresh_token=SecretStr(REFRESH),
        state_dir=tmp_path,
        config=None,
        **changes,
    )
    return RunContext(settings, transport=httpx.MockTransport(fake.handle))


async def test_once_stopped_no_call_is_retried_and_none_is_started(tmp_path):
    fake = FakeApi(lambda _request: httpx.Response(503, json={"msg": "down"}))
    ctx = run_context(fake, tmp_path)

    def failing(_request: httpx.Request) -> httpx.Response:
        ctx.stop.set()  # the stop arrives while the first attempt is out
        return httpx.Response(503, json={"msg": "down"})

    fake.api = failing
    async with client_of(ctx) as client:
        with pytest.raises(Stopped) as retried:
            await client.groups()
        assert retried.value.sent, "an attempt went out: it may not be called unsent"
        assert fake.api_requests == 1
        with pytest.raises(Stopped) as started:
            await client.organizers()
        assert not started.value.sent
        assert "not sent: the run is stopping" in started.value.message
    assert fake.api_requests == 1


async def test_a_stop_during_a_retry_wait_ends_the_wait(tmp_path):
    # A 429 asking for 600 s: the retry waits the capped Retry-After, far longer than the test.
    answer = httpx.Response(429, json={"msg": "slow down"}, headers={"Retry-After": "600"})
    fake = FakeApi(lambda _request: answer)
    ctx = run_context(fake, tmp_path, call_deadline=86_400.0)
    async with client_of(ctx) as client:
        call = asyncio.ensure_future(client.groups())
        while fake.api_requests == 0:
            await asyncio.sleep(0.01)
        ctx.stop.set()
        with pytest.raises(Stopped):
            await asyncio.wait_for(call, timeout=10)
    assert fake.api_requests == 1


async def test_a_stop_while_a_request_waits_for_its_turn_keeps_it_off_the_wire(tmp_path):
    fake = FakeApi(lambda _request: httpx.Response(200, json=[]))
    ctx = run_context(fake, tmp_path, rate_limit=0.5)  # one request every two seconds
    async with client_of(ctx) as client:
        await client.groups()
        waiting = asyncio.ensure_future(client.organizers())
        await asyncio.sleep(0.1)
        assert not waiting.done(), "the second request waits for its turn"
        ctx.stop.set()
        with pytest.raises(Stopped) as stopped:
            await asyncio.wait_for(waiting, timeout=1)
    assert not stopped.value.sent
    assert fake.api_requests == 1


async def test_a_token_endpoint_echoing_the_request_puts_no_secret_into_errors(tmp_path):
    def echo(status: int) -> Callable[[httpx.Request], httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            echoed = request.content.decode() + " " + request.headers["Authorization"]
            return httpx.Response(status, json={"error": echoed, "error_description": echoed})

        return answer

    for status, kind in ((400, AuthError), (503, ApiError)):
        fake = FakeApi(lambda _request: httpx.Response(200, json=[]))
        fake.token_answer = echo(status)
        async with make_client(fake, tmp_path) as client:
            with pytest.raises(kind) as raised:
                await client.groups()
        _secrets_absent(raised.value)


async def test_a_failing_api_answer_puts_no_token_into_errors(tmp_path):
    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=request.headers["Authorization"])

    fake = FakeApi(echo)
    async with make_client(fake, tmp_path) as client:
        with pytest.raises(ApiError) as raised:
            await client.groups()
    assert raised.value.status == 400
    # The API's own answer is quoted (it names what went wrong); the request never is.
    seen = raised.value.__cause__ or raised.value.__context__
    assert seen is None or ACCESS not in str(seen)


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("api_base_url", "http://api.getgo.com/G2M/rest"),
        ("token_url", "http://authentication.logmeininc.com/oauth/token"),
        ("api_base_url", "http://10.0.0.5/G2M/rest"),
    ],
)
def test_plain_http_to_a_host_that_is_not_loopback_is_refused(tmp_path, name, url):
    settings = Settings(
        client_id="id",
        client_secret=SecretStr(SECRET),
        state_dir=tmp_path,
        config=None,
        **{name: url},
    )
    with pytest.raises(SettingsError) as raised:
        client_from_settings(settings)
    assert raised.value.exit_code == 2
    assert "https://" in str(raised.value)


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost", "[::1]:9000"])
async def test_plain_http_to_loopback_is_accepted(tmp_path, host):
    settings = Settings(
        client_id="id",
        client_secret=SecretStr(SECRET),
        state_dir=tmp_path,
        config=None,
        api_base_url=f"http://{host}/G2M/rest",
        token_url=f"http://{host}/oauth/token",
    )
    async with client_from_settings(settings) as client:
        assert client.base_url.startswith("http://")


def test_a_ca_bundle_that_is_not_a_file_is_a_settings_error(tmp_path):
    settings = Settings(
        client_id="id",
        client_secret=SecretStr(SECRET),
        state_dir=tmp_path,
        config=None,
        ca_bundle=str(tmp_path / "missing.pem"),
    )
    with pytest.raises(SettingsError) as raised:
        client_from_settings(settings)
    assert "RETENTION_CA_BUNDLE" in str(raised.value)
