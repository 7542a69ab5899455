"""Start an installed `retention daemon` against a sandbox, wait for READY=1, stop it with SIGTERM.

Usage: python daemon_ready.py RETENTION POLICY_DIR STATE_DIR

RETENTION is the installed program; the daemon gets a NOTIFY_SOCKET this script listens on, as
systemd would give it. Exits 0 when the daemon reported READY=1 within 60 s and then stopped
with exit 0 on SIGTERM; otherwise 1, with the daemon's output.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WAIT_SECONDS = 60.0


def start_sandbox(program: str) -> tuple[subprocess.Popen[str], str]:
    """A small sandbox account on a free loopback port, and its base URL."""
    sandbox = subprocess.Popen(  # noqa: S603 - the program CI installed
        [program, "sandbox", "--port", "0", "--organizers", "5", "--days", "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sandbox.stdout is not None
    base_url = sandbox.stdout.readline().strip()
    if not base_url.startswith("http://"):
        sandbox.kill()
        sys.exit(f"the sandbox did not start: {base_url!r}")
    return sandbox, base_url


def daemon_env(base_url: str, policies: Path, state: Path, notify: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RETENTION_")}
    env.update(
        {
            "RETENTION_API_BASE_URL": f"{base_url}/G2M/rest",
            "RETENTION_TOKEN_URL": f"{base_url}/oauth/token",
            "RETENTION_CLIENT_ID": "sandbox-client",
            "RETENTION_CLIENT_SECRET": "sandbox-secret",
            "RETENTION_REFRESH_TOKEN": "sandbox-refresh",
            "RETENTION_STATE_DIR": str(state),
            "RETENTION_POLICY_DIR": str(policies),
            "RETENTION_METRICS_ADDRESS": "127.0.0.1:0",
            "RETENTION_NOTICE_CONTACT": "compliance@example.com",
            "NOTIFY_SOCKET": notify,
        }
    )
    return env


def wait_for_ready(listener: socket.socket, daemon: subprocess.Popen[bytes]) -> float | None:
    """Seconds until READY=1 arrived; None when the daemon exited or the wait ran out."""
    started = time.monotonic()
    while time.monotonic() - started < WAIT_SECONDS and daemon.poll() is None:
        try:
            message = listener.recv(4096).decode()
        except TimeoutError:
            continue
        if "READY=1" in message.splitlines():
            return time.monotonic() - started
    return None


def main() -> int:
    program, policies, state = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    sandbox, base_url = start_sandbox(program)
    # A short directory: a socket's path is limited to 108 bytes.
    folder = tempfile.mkdtemp(prefix="rn-", dir="/tmp")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(os.path.join(folder, "notify"))
    listener.settimeout(0.5)
    log = state.parent / "daemon.log"
    try:
        with log.open("wb") as out:
            daemon = subprocess.Popen(  # noqa: S603 - the program CI installed
                [program, "daemon"],
                env=daemon_env(base_url, policies, state, listener.getsockname()),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            ready = wait_for_ready(listener, daemon)
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(timeout=WAIT_SECONDS)
    finally:
        listener.close()
        shutil.rmtree(folder, ignore_errors=True)
        sandbox.terminate()
        sandbox.wait(timeout=10)
    if ready is None or code != 0:
        print(log.read_text(errors="replace"), file=sys.stderr)
        print(f"the daemon was not READY within {WAIT_SECONDS:.0f} s or exited {code}")
        return 1
    print(f"daemon READY=1 after {ready:.1f} s; stopped by SIGTERM with exit 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
