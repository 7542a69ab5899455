"""Hostile transports and answers through the real CLI: one message naming them, never a traceback.

A small loopback server plays the API: plain http for a non-loopback name, a self-signed
certificate, an answer nested 10,000 deep and one over RETENTION_MAX_RESPONSE_BYTES.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from goto.test_tls import self_signed
from support import invoke_retention

TOKEN = {"access_token": "a", "refresh_token": "r", "expires_in": 3600, "account_key": "1"}
DEEP = b"[" * 10_000 + b"]" * 10_000
CAP = 1 << 20


class Api(BaseHTTPRequestHandler):
    """The token endpoint answers; the organizer listing answers what the test set up."""

    answer = b"[]"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._send(json.dumps(TOKEN).encode())

    def do_GET(self) -> None:
        self._send(type(self).answer)

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


class Server(ThreadingHTTPServer):
    """A client that stops reading an answer over its size cap closes the connection: the
    server thread, in the command's process, must not print that on the command's stderr."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _serve(context: ssl.SSLContext | None = None) -> Iterator[tuple[str, type[Api]]]:
    handler = type("Answering", (Api,), {})
    server = Server(("127.0.0.1", 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    scheme = "https" if context else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def api() -> Iterator[tuple[str, type[Api]]]:
    yield from _serve()


def _inventory(tmp_path: Path, base: str, **settings: str) -> subprocess.CompletedProcess[str]:
    policies = tmp_path / "policies"
    policies.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")}
    env.update(
        {
            "RETENTION_API_BASE_URL": f"{base}/G2M/rest",
            "RETENTION_TOKEN_URL": f"{base}/oauth/token",
            "RETENTION_CLIENT_ID": "client",
            "RETENTION_CLIENT_SECRET": "client-secret-value",
            "RETENTION_REFRESH_TOKEN": "refresh-token-value",
            "RETENTION_STATE_DIR": str(tmp_path / "state"),
            "RETENTION_POLICY_DIR": str(policies),
            "RETENTION_MAX_RESPONSE_BYTES": str(CAP),
            "RETENTION_CALL_DEADLINE": "20",
            **settings,
        }
    )
    return invoke_retention("inventory", env=env, timeout=120)


def _one_message(result: subprocess.CompletedProcess[str], code: int, *named: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in result.stderr, result.stderr
    for secret in ("client-secret-value", "refresh-token-value"):
        assert secret not in result.stderr + result.stdout


def test_plain_http_to_a_host_that_is_not_loopback_is_refused_before_any_call(
    tmp_path: Path,
) -> None:
    result = _inventory(tmp_path, "http://api.example.com")
    _one_message(result, 2, "http://api.example.com")
    assert not (tmp_path / "state" / "token.json").exists()


def test_a_self_signed_certificate_is_named_as_a_tls_failure(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    for base, _handler in _serve(context):
        result = _inventory(tmp_path, base)
    _one_message(result, 1, "TLS", "RETENTION_CA_BUNDLE")


def test_an_answer_nested_ten_thousand_deep_is_a_malformed_answer(
    tmp_path: Path, api: tuple[str, type[Api]]
) -> None:
    base, handler = api
    handler.answer = DEEP
    _one_message(_inventory(tmp_path, base), 1, "/organizers", "nested")


def test_an_answer_over_the_size_cap_fails_its_call_naming_the_endpoint(
    tmp_path: Path, api: tuple[str, type[Api]]
) -> None:
    base, handler = api
    handler.answer = b"[" + b" " * (2 * CAP) + b"]"
    _one_message(_inventory(tmp_path, base), 1, "/organizers", "RETENTION_MAX_RESPONSE_BYTES")
