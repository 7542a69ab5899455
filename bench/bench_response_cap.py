"""Peak memory of one history answer at the response cap, and of one far over it (refused).

A loopback HTTP server answers with organizer-history rows rendered by the sandbox, filling the
answer up to `RETENTION_MAX_RESPONSE_BYTES` (32 MiB by default). A child process reads it the
way every API call is read (streamed under the cap, parsed as JSON, validated into models) and
reports its peak RSS; a second child asks for an answer ten times the cap and must be refused
before holding it. Run: `python -m bench bench_response_cap`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from retention.goto.http import DEFAULT_MAX_RESPONSE_BYTES
from retention.sandbox.generate import generate_account
from retention.sandbox.render import history_row

CHILD = """
import asyncio, resource, sys, httpx
from retention.goto.errors import ResponseTooLarge
from retention.goto.http import DEFAULT_MAX_RESPONSE_BYTES, make_http_client, send
from retention.goto.models import HistoricalSession, parse_items

async def main(url: str) -> None:
    async with make_http_client() as http:
        request = http.build_request("GET", url)
        try:
            answer = await send(
                http, request, endpoint="/history", max_bytes=DEFAULT_MAX_RESPONSE_BYTES
            )
        except ResponseTooLarge:
            outcome = "refused over the cap"
        else:
            parsed = parse_items(HistoricalSession, answer.json("GET", "/history"), "/history")
            outcome = f"{len(parsed.items)} sessions, {len(answer.body) / 2**20:.1f} MiB"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{outcome}; peak RSS {peak:.0f} MiB")

asyncio.run(main(sys.argv[1]))
"""


def _answer(size: int) -> bytes:
    """A JSON array of history rows just under `size` bytes."""
    account = generate_account(
        seed=7, organizers=20, groups=3, days=60, sessions_per_day=40, now=datetime.now(UTC)
    )
    rows = [json.dumps(history_row(account, s)).encode() for s in account.sessions.values()]
    body = bytearray(b"[")
    index = 0
    while len(body) + len(rows[index % len(rows)]) + 2 < size:
        if len(body) > 1:
            body += b","
        body += rows[index % len(rows)]
        index += 1
    body += b"]"
    return bytes(body)


def _serve(at_cap: bytes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if self.path == "/cap":
                self.send_header("Content-Length", str(len(at_cap)))
                self.end_headers()
                self.wfile.write(at_cap)
                return
            # Ten times the cap, with no Content-Length: only counting the bytes read stops it.
            self.end_headers()
            chunk = b" " * (1 << 20)
            try:
                for _ in range(10 * DEFAULT_MAX_RESPONSE_BYTES // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    at_cap = _answer(DEFAULT_MAX_RESPONSE_BYTES)
    server = _serve(at_cap)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    try:
        for label, path in (("answer at the cap", "/cap"), ("answer 10x the cap", "/over")):
            done = subprocess.run(
                [sys.executable, "-c", CHILD, base + path],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                timeout=300,
            )
            print(f"{label}: {done.stdout.strip()}")
    finally:
        server.shutdown()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this benchmark's own process: {own:.0f} MiB, not counted above)")


if __name__ == "__main__":
    main()
