"""The allowed-signers file: ssh-keygen's format, only the namespaces option, FILE:LINE errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from approvers import Approver

from retention.approvals.signers import load_allowed_signers
from retention.errors import InvalidInput


def test_principals_comments_blank_lines_and_namespaces_are_read(
    approver: Callable[[str], Approver], tmp_path: Path
) -> None:
    ana, bob = approver("ana"), approver("bob")
    path = tmp_path / "allowed_signers"
    path.write_text(
        "# compliance officers\n"
        "\n"
        f"ana@example.com,ana {ana.public_line} ana's laptop\n"
        f'bob namespaces="git,goto-retention-plan" {bob.public_line}\n'
    )
    signers = load_allowed_signers(path)

    assert signers.principals_of(ana.fingerprint) == ["ana@example.com", "ana"]
    assert signers.allows("bob", bob.fingerprint)
    assert not signers.allows("bob", ana.fingerprint), "a principal signs with its own key"


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ('ana namespaces="git" KEY', "namespaces='git' does not include goto-retention-plan"),
        ("ana cert-authority KEY", "the option 'cert-authority' is not accepted"),
        ('ana valid-after="20260101" KEY', "the option 'valid-after' is not accepted"),
        ("*@example.com KEY", "is a pattern"),
        ("ana", "no key after the principals"),
        ("ana ssh-rsa AAAAB3NzaC1yc2E", "the key type 'ssh-rsa' is not accepted"),
        ("ana ssh-ed25519 not-base64!", "not a valid ssh-ed25519 key"),
    ],
)
def test_a_bad_line_is_refused_with_its_file_and_line(
    approver: Callable[[str], Approver], tmp_path: Path, line: str, error: str
) -> None:
    ana = approver("ana")
    path = tmp_path / "allowed_signers"
    path.write_text(
        f"# approvers\n{ana.name} {ana.public_line}\n{line.replace('KEY', ana.public_line)}\n"
    )

    with pytest.raises(InvalidInput) as raised:
        load_allowed_signers(path)

    assert raised.value.message.startswith(f"{path}:3: ")
    assert error in raised.value.message
    assert raised.value.hint


def test_a_missing_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_allowed_signers(tmp_path / "nowhere")
