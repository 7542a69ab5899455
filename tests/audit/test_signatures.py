"""Signatures mean something: key rotation, stripped signatures, and a verdict that says what."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from retention.audit import AuditLog
from retention.audit.checkpoint import key_id

Opener = Callable[..., AuditLog]
RunWriter = Callable[..., list[int]]
Cli = Callable[..., Any]


TwoRuns = Callable[[dict[str, Any], dict[str, Any]], None]


@pytest.fixture
def two_runs(open_log: Opener, write_run: RunWriter) -> TwoRuns:
    """Writes a full run in the log opened with the first overrides, then, in the log opened
    with the second, a run that removed nothing; each sealed by whichever key its log holds."""

    def write(first: dict[str, Any], then: dict[str, Any]) -> None:
        log = open_log(**first)
        write_run(log, run_id="run-1")
        log.close()
        log = open_log(**then)
        log.run_started(run_id="run-2", trigger="schedule", settings_summary={})
        log.run_finished(run_id="run-2", counts={}, result="ok")
        log.checkpoint()
        log.close()

    return write


def _public(tmp_path: Path, name: str, key: Ed25519PrivateKey) -> Path:
    path = tmp_path / name
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def rotated(two_runs: TwoRuns) -> Ed25519PrivateKey:
    """One run sealed by the first key, one by the key that replaced it."""
    second = Ed25519PrivateKey.generate()
    two_runs({}, {"signing_key": second})
    return second


def _json(run_cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("verify", "--format", "json", *args)
    return result.exit_code, json.loads(result.output)


def test_after_a_rotation_each_checkpoint_verifies_under_one_of_the_keys(
    rotated: Ed25519PrivateKey, signing_key: Ed25519PrivateKey, run_cli: Cli, tmp_path: Path
) -> None:
    first = _public(tmp_path, "first.pub", signing_key)
    second = _public(tmp_path, "second.pub", rotated)
    result = run_cli("verify", "--public-key", str(first), "--public-key", str(second))
    assert result.exit_code == 0, result.output
    ids = sorted([key_id(signing_key.public_key()), key_id(rotated.public_key())])
    assert f"Result: CLEAN, signatures verified (keys {', '.join(ids)})" in result.output
    exit_code, report = _json(run_cli, "--public-key", str(first), "--public-key", str(second))
    assert (exit_code, report["signature_state"], report["keys_used"]) == (0, "verified", ids)
    exit_code, report = _json(run_cli, "--public-key", str(second))
    assert exit_code == 1
    assert report["signature_state"] == "invalid"
    assert {f["code"] for f in report["findings"]} == {"checkpoint_signature"}


def test_trusted_keys_setting_names_a_folder_of_public_keys(
    rotated: Ed25519PrivateKey,
    signing_key: Ed25519PrivateKey,
    run_cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    _public(folder, "2026-a.pub", signing_key)
    _public(folder, "2026-b.pub", rotated)
    monkeypatch.setenv("RETENTION_TRUSTED_KEYS", str(folder))
    exit_code, report = _json(run_cli)
    assert exit_code == 0, report["findings"]
    assert report["signature_state"] == "verified"
    assert len(report["keys_used"]) == 2


def test_without_a_key_the_verdict_says_signatures_were_not_checked(
    rotated: Ed25519PrivateKey, run_cli: Cli
) -> None:
    result = run_cli("verify")
    assert result.exit_code == 0, result.output
    assert "Result: CLEAN, signatures not checked (no public key given)" in result.output
    _, report = _json(run_cli)
    assert report["signature_state"] == "not_checked"
    assert report["result"] == "CLEAN, signatures not checked (no public key given)"


def test_an_unsigned_checkpoint_after_a_signed_one_is_a_finding(
    two_runs: TwoRuns, run_cli: Cli, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    two_runs({}, {"signing_key": None})
    exit_code, report = _json(run_cli)
    assert exit_code == 1
    unsigned = [f for f in report["findings"] if f["code"] == "checkpoint_unsigned"]
    # Named twice: the row in the log and the line in the checkpoint file.
    assert [(f["seq"], f["line"]) for f in unsigned] == [(15, None), (None, 2)]
    public = _public(tmp_path, "audit.pub", signing_key)
    exit_code, report = _json(run_cli, "--public-key", str(public))
    assert report["signature_state"] == "invalid"


def test_unsigned_checkpoints_before_the_first_signed_one_predate_the_key(
    two_runs: TwoRuns, run_cli: Cli, signing_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    two_runs({"signing_key": None}, {})
    public = _public(tmp_path, "audit.pub", signing_key)
    exit_code, report = _json(run_cli, "--public-key", str(public))
    assert exit_code == 0, report["findings"]
    assert report["checkpoints"] == {"total": 2, "valid": 1, "invalid": 0, "unsigned": 1}
