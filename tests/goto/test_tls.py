"""TLS against a loopback server with a self-signed certificate; proxies from the environment."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from retention.goto.auth import TokenManager
from retention.goto.client import GoToClient
from retention.goto.errors import TlsError
from retention.goto.http import make_http_client
from retention.goto.tokenstore import TokenStore

pytestmark = pytest.mark.anyio

TOKEN = {"access_token": "a", "refresh_token": "r", "expires_in": 3600, "account_key": "1"}


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loopback test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            body = json.dumps(TOKEN if b"/oauth/token" in head else []).encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}", cert


def client_for(base: str, tmp_path: Path, ca_bundle: Path | None = None) -> GoToClient:
    auth = TokenManager(
        base + "/oauth/token",
        "id",
        SecretStr("secret"),
        TokenStore(tmp_path / "token.json"),
        SecretStr("r"),
        http=make_http_client(ca_bundle=ca_bundle),
    )
    return GoToClient(base + "/G2M/rest", auth, 100.0)


async def test_a_self_signed_certificate_is_named_as_a_tls_failure_not_a_timeout(
    tls_server, tmp_path
):
    base, _cert = tls_server
    async with client_for(base, tmp_path) as client:
        with pytest.raises(TlsError) as raised:
            await client.groups()
    message = str(raised.value)
    assert "TLS certificate verification failed for 127.0.0.1" in message
    assert "RETENTION_CA_BUNDLE" in message
    assert "Timeout" not in message


async def test_the_ca_bundle_makes_the_corporate_ca_trusted(tls_server, tmp_path):
    base, cert = tls_server
    async with client_for(base, tmp_path, ca_bundle=cert) as client:
        groups = await client.groups()
    assert groups.items == []


async def test_requests_go_through_the_proxy_the_environment_names(tmp_path, monkeypatch):
    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head.split(b"\r\n")[0])
        body = json.dumps(TOKEN if b"/oauth/token" in head else []).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    async with server, client_for("http://api.example.invalid", tmp_path) as client:
        await client.groups()
    assert seen[-1] == b"GET http://api.example.invalid/G2M/rest/groups HTTP/1.1"
