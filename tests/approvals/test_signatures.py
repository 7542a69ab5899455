"""Approvals' signatures are OpenSSH's: ssh-keygen verifies ours, and we verify ssh-keygen's."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from approvers import Approver, make_key, ssh_keygen_sign, write_signers

from retention.approvals import sshsig
from retention.audit.checkpoint import generate_key_pair
from retention.errors import InvalidInput

PLAN_HASH = "3f" * 32
VERIFY = ("ssh-keygen", "-Y", "verify", "-n", sshsig.NAMESPACE, "-f")


def ssh_keygen_verifies(signers: Path, principal: str, signature: str, message: str) -> bool:
    """`ssh-keygen -Y verify -n goto-retention-plan` over `message` on standard input."""
    sig_file = signers.parent / "approval.sig"
    sig_file.write_text(signature)
    done = subprocess.run(
        [*VERIFY, str(signers), "-I", principal, "-s", str(sig_file)],
        input=message,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode == 0


def test_a_signature_the_product_makes_verifies_with_ssh_keygen(
    approver: Callable[[str], Approver], tmp_path: Path
) -> None:
    ana = approver("ana")
    signers = write_signers(tmp_path / "allowed_signers", ana)
    signature = sshsig.sign(sshsig.load_private_key(ana.key), PLAN_HASH.encode())

    assert ssh_keygen_verifies(signers, "ana", signature, PLAN_HASH)
    assert not ssh_keygen_verifies(signers, "ana", signature, "40" * 32), "another plan's hash"


def test_a_signature_ssh_keygen_makes_verifies_in_the_product(
    approver: Callable[[str], Approver], tmp_path: Path
) -> None:
    ana = approver("ana")
    signature = ssh_keygen_sign(ana.key, tmp_path / "hash", PLAN_HASH, sshsig.NAMESPACE)
    armored = signature.read_text()

    verified = sshsig.verify(armored, PLAN_HASH.encode())
    assert verified.fingerprint == ana.fingerprint
    with pytest.raises(sshsig.SignatureError, match="does not verify"):
        sshsig.verify(armored, ("40" * 32).encode())
    with pytest.raises(sshsig.SignatureError, match="namespace"):
        sshsig.verify(armored, PLAN_HASH.encode(), namespace="git")


def test_a_signature_in_another_namespace_is_refused(
    approver: Callable[[str], Approver], tmp_path: Path
) -> None:
    ana = approver("ana")
    signature = ssh_keygen_sign(ana.key, tmp_path / "hash", PLAN_HASH, "git")
    with pytest.raises(sshsig.SignatureError, match="namespace 'git'"):
        sshsig.verify(signature.read_text(), PLAN_HASH.encode())


def test_the_fingerprint_is_openssh_s(approver: Callable[[str], Approver]) -> None:
    ana = approver("ana")
    key = sshsig.load_private_key(ana.key)
    assert sshsig.fingerprint(key.public_key()) == ana.fingerprint
    assert sshsig.openssh_line(key.public_key()) == ana.public_line


def test_an_audit_keygen_key_signs_approvals_ssh_keygen_accepts(tmp_path: Path) -> None:
    _public_file, public = generate_key_pair(tmp_path / "officer")
    key = sshsig.load_private_key(tmp_path / "officer")
    signers = tmp_path / "allowed_signers"
    signers.write_text(f"officer {sshsig.openssh_line(public)}\n")

    signature = sshsig.sign(key, PLAN_HASH.encode())

    assert ssh_keygen_verifies(signers, "officer", signature, PLAN_HASH)
    assert sshsig.verify(signature, PLAN_HASH.encode()).fingerprint == sshsig.fingerprint(public)


def test_an_encrypted_key_is_refused_with_what_to_do(tmp_path: Path) -> None:
    locked = make_key(tmp_path, "locked", passphrase="a passphrase")
    with pytest.raises(InvalidInput, match="encrypted") as raised:
        sshsig.load_private_key(locked.key)
    assert "ssh-keygen -Y sign" in str(raised.value.hint)


def test_a_key_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    ecdsa = make_key(tmp_path, "ecdsa", kind="ecdsa")
    with pytest.raises(InvalidInput, match="not an Ed25519 private key"):
        sshsig.load_private_key(ecdsa.key)
