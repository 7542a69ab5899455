"""Approvers for the tests: Ed25519 keys made by ssh-keygen, allowed-signers files, events."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import Deployment


@dataclass(frozen=True)
class Approver:
    """An approver's key pair made by `ssh-keygen -t ed25519 -N ''`."""

    name: str
    key: Path

    @property
    def public_line(self) -> str:
        """`ssh-ed25519 AAAA…` (the .pub file less its comment)."""
        kind, blob, *_ = Path(f"{self.key}.pub").read_text().split()
        return f"{kind} {blob}"

    @property
    def fingerprint(self) -> str:
        shown = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", f"{self.key}.pub"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return shown.split()[1]


def make_key(folder: Path, name: str, kind: str = "ed25519", passphrase: str = "") -> Approver:
    """A new key pair FOLDER/NAME made by `ssh-keygen -t KIND` (no passphrase unless given)."""
    assert shutil.which("ssh-keygen"), "the approval tests need ssh-keygen (openssh-client)"
    folder.mkdir(parents=True, exist_ok=True)
    key = folder / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", name, "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return Approver(name, key)


def ssh_keygen_sign(key: Path, message: Path, text: str, namespace: str) -> Path:
    """Write `text` to MESSAGE and sign it with `ssh-keygen -Y sign`; the MESSAGE.sig path."""
    message.write_text(text)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-n", namespace, "-f", str(key), str(message)],
        check=True,
        capture_output=True,
    )
    return Path(f"{message}.sig")


def write_signers(path: Path, *approvers: Approver) -> Path:
    """An allowed-signers file naming each approver by its name."""
    path.write_text("".join(f"{a.name} {a.public_line}\n" for a in approvers))
    return path


def audit_events(dep: Deployment, kind: str) -> list[dict[str, Any]]:
    """The `data` of every audit event of this kind, read from the record itself."""
    conn = sqlite3.connect(f"file:{dep.state_dir / 'audit.db'}?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT data FROM events WHERE event = ? ORDER BY seq", [kind])
        return [json.loads(data) for (data,) in found]
    finally:
        conn.close()
