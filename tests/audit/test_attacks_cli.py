"""Each attack on the record, with real files and the real CLI against the sandbox: refused, nothing
written, `verify` names the finding, and `audit init --new-log` is the only way to a new record."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import Deployment

from retention.audit.store import COLUMNS, GENESIS_HASH, TRIGGERS, canonical_json, row_hash
from retention.sandbox.policies import policy_set, rule

SANDBOX = ("--seed", "5", "--days", "60", "--sessions-per-day", "2")
NOTHING_DUE = policy_set(rule("sessions", 400))
RECORDINGS = policy_set(rule("recordings", 20))
ALL_TRIGGERS = ("events_no_update", "events_no_delete", "events_chain")


@pytest.fixture
def deploy(sandbox: Callable[..., Any], tmp_path: Path) -> Callable[..., Deployment]:
    """Factory: the sandbox and a state directory, with these policies and settings."""

    def build(policies: str = RECORDINGS, **env: str) -> Deployment:
        server = sandbox(*SANDBOX)
        policy_dir = tmp_path / "policies"
        policy_dir.mkdir(exist_ok=True)
        (policy_dir / "policies.yaml").write_text(policies)
        return Deployment(
            server, tmp_path, server.service_env(tmp_path / "state", policy_dir, **env)
        )

    return build


def files(dep: Deployment) -> tuple[int, bytes]:
    """The record's row count and the checkpoint file's bytes."""
    conn = sqlite3.connect(f"file:{dep.state_dir / 'audit.db'}?mode=ro", uri=True)
    try:
        rows = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()
    return rows, (dep.state_dir / "audit-checkpoints.jsonl").read_bytes()


def edit(audit_db: Path, *statements: str) -> None:
    """Change rows as someone with write access would: triggers dropped, then put back."""
    conn = sqlite3.connect(audit_db, isolation_level=None)
    for name in ALL_TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    for statement in statements:
        conn.execute(statement)
    for name in ALL_TRIGGERS:
        conn.execute(TRIGGERS[name])
    conn.close()


def refused_as_unverified(dep: Deployment, *command: str) -> str:
    """`command` exits 1 with reason audit_unverified, scans nothing and writes nothing."""
    before = files(dep) if (dep.state_dir / "audit.db").exists() else None
    mark = len(dep.requests())
    result = dep.cli(*command)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: the audit record cannot be verified" in result.stderr, result.stderr
    assert "reason: audit_unverified" in result.stderr.splitlines(), result.stderr
    assert dep.requests(mark) == [], "nothing was scanned or removed"
    if before is not None:
        assert files(dep) == before, "the record or the checkpoint file changed"
    return result.stderr


def verified(dep: Deployment, *args: str) -> tuple[int, dict[str, Any]]:
    result = dep.cli("audit", "verify", "--format", "json", *args)
    return result.returncode, json.loads(result.stdout)


def test_a_row_edited_without_rehashing_is_refused_by_run_and_named_by_verify(
    deploy: Callable[..., Deployment],
) -> None:
    dep = deploy(NOTHING_DUE)
    dep.cli("run", "--yes", check=True)
    (dep.policy_dir / "policies.yaml").write_text(RECORDINGS)
    plan_file = dep.root / "plan.json"
    dep.cli("plan", "--out", str(plan_file), check=True)
    # Row 3 is sealed by the last checkpoint: only a pass that rehashes every row sees it.
    edit(dep.state_dir / "audit.db", "UPDATE events SET run = 'run-forged' WHERE seq = 3")
    for command in (("run", "--yes"), ("apply", str(plan_file), "--yes")):
        stderr = refused_as_unverified(dep, *command)
        assert "row 3: stored hash does not match its contents" in stderr
    assert dep.deletes() == []
    code, report = verified(dep)
    assert code == 1
    assert ("bad_hash", 3) in [(f["code"], f["seq"]) for f in report["findings"]]


def _forge(dep: Deployment, drop_session: int) -> None:
    """Erase one session's intent and outcome and rehash what follows; the checkpoints after it
    are resealed unsigned (no key), the signed ones before it kept. The checkpoint file and the
    state database's last seal are rewritten to agree: a consistent rewrite."""
    audit_db = dep.state_dir / "audit.db"
    conn = sqlite3.connect(audit_db)
    conn.row_factory = sqlite3.Row
    rows = [dict(row) for row in conn.execute("SELECT * FROM events ORDER BY seq")]
    conn.close()
    kept: list[dict[str, Any]] = []
    renumbered: dict[int, int] = {}
    lines: list[bytes] = []
    previous, changed = GENESIS_HASH, False
    for row in rows:
        if str(row["session_id"]) == str(drop_session):
            changed = True
            continue
        renumbered[row["seq"]] = row["seq"] = len(kept) + 1
        if row["intent_seq"] is not None:
            row["intent_seq"] = renumbered[row["intent_seq"]]
        if row["event"] == "checkpoint":
            payload = json.loads(row["data"])
            if changed:
                payload.update(rows=row["seq"] - 1, head=previous, signature=None, key_id=None)
            row["data"] = canonical_json(payload).decode()
            lines.append(canonical_json({**payload, "seq": row["seq"]}) + b"\n")
        row["prev_hash"] = previous
        row["hash"] = previous = row_hash(previous, row)
        kept.append(row)
    assert changed, f"session {drop_session} is not in the record"
    marks = ", ".join("?" * len(COLUMNS))
    conn = sqlite3.connect(audit_db, isolation_level=None)
    for name in ALL_TRIGGERS:
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM events")
    conn.executemany(
        f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES ({marks})",
        [[row[column] for column in COLUMNS] for row in kept],
    )
    for name in ALL_TRIGGERS:
        conn.execute(TRIGGERS[name])
    conn.close()
    (dep.state_dir / "audit-checkpoints.jsonl").write_bytes(b"".join(lines))
    last = json.loads(lines[-1])
    state = sqlite3.connect(dep.state_dir / "state.db", isolation_level=None)
    state.execute(
        "INSERT INTO audit_heads (log_id, rows, head, signed, time) VALUES (?, ?, ?, 0, ?)",
        [last["log_id"], last["rows"], last["head"], last["time"]],
    )
    state.close()


def test_a_consistent_rewrite_resealed_unsigned_is_refused_and_verify_names_it(
    deploy: Callable[..., Deployment], tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = tmp_path / "signing.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    dep = deploy(NOTHING_DUE, RETENTION_SIGNING_KEY=pem)
    dep.cli("run", "--yes", check=True)  # a signed checkpoint before any removal
    (dep.policy_dir / "policies.yaml").write_text(RECORDINGS)
    dep.cli("run", "--yes", check=True)
    removed = [e for e in dep.events() if e["event"] == "intent"]
    assert removed, "the second run removed nothing: nothing to erase"
    _forge(dep, drop_session=int(removed[0]["sessionId"]))

    stderr = refused_as_unverified(dep, "run", "--yes")
    assert "checkpoint is not signed, after a signed one" in stderr, stderr
    code, report = verified(dep, "--public-key", str(public))
    assert code == 1
    assert "checkpoint_unsigned" in {f["code"] for f in report["findings"]}, report


def test_a_deleted_record_is_refused_until_a_new_log_is_started_on_purpose(
    deploy: Callable[..., Deployment],
) -> None:
    dep = deploy()
    dep.cli("run", "--yes", check=True)
    old_id = json.loads((dep.state_dir / "audit-checkpoints.jsonl").read_text().splitlines()[-1])[
        "log_id"
    ]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{dep.state_dir / 'audit.db'}{suffix}").unlink(missing_ok=True)

    stderr = refused_as_unverified(dep, "run", "--yes")
    assert old_id in stderr
    assert not (dep.state_dir / "audit.db").exists(), "no record is started silently"
    started = dep.cli("audit", "init", "--new-log", "--reason", "disk replaced", check=True)
    assert f"following log {old_id}" in started.stdout
    again = dep.cli("run", "--yes")
    assert again.returncode == 0, again.stderr
    code, report = verified(dep)
    assert code == 0, report


def test_a_garbage_checkpoint_line_is_refused_and_verify_still_checks_the_rest(
    deploy: Callable[..., Deployment],
) -> None:
    dep = deploy()
    dep.cli("run", "--yes", check=True)
    checkpoints = dep.state_dir / "audit-checkpoints.jsonl"
    good = checkpoints.read_text().splitlines()
    with checkpoints.open("a") as handle:
        handle.write("this is not a checkpoint\n")

    stderr = refused_as_unverified(dep, "run", "--yes")
    assert f"{checkpoints}:{len(good) + 1}: not a checkpoint line" in stderr, stderr
    code, report = verified(dep)
    assert code == 1
    assert [(f["code"], f["line"]) for f in report["findings"]] == [
        ("checkpoint_malformed", len(good) + 1)
    ]
    assert report["external_checkpoints"] == len(good), "the good lines were still checked"
    assert report["rows"] == files(dep)[0], "every row was still checked"
