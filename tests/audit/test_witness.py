"""The witness: each checkpoint line goes to a command off the host; its failure never blocks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from retention.audit import AuditLog
from retention.audit.checkpoint import MESSAGE_ID
from retention.audit.witness import witness_argv

Opener = Callable[..., AuditLog]

pytestmark = pytest.mark.skipif(shutil.which("tee") is None, reason="needs tee")


def test_the_witness_receives_the_checkpoint_line_on_stdin(
    open_log: Opener, tmp_path: Path, db_path: Path
) -> None:
    received = tmp_path / "witness copy.jsonl"
    argv = witness_argv(f"tee -a '{received}'")
    assert argv == ["tee", "-a", str(received)]
    log = open_log(witness=argv)
    log.run_started(run_id="run-1", trigger="manual", settings_summary={})
    with capture_logs() as logs:
        sealed = log.checkpoint()
    log.close()
    assert received.read_bytes() == (db_path.parent / "audit-checkpoints.jsonl").read_bytes()
    assert json.loads(received.read_text())["head"] == sealed.head
    assert log.witness_failures == 0
    lines = [entry for entry in logs if entry["event"] == "audit_checkpoint"]
    assert [entry["message_id"] for entry in lines] == [MESSAGE_ID]
    assert MESSAGE_ID == "goto-retention-checkpoint"


@pytest.mark.parametrize("command", ["false", "no-such-witness-command --flag"])
def test_a_failing_witness_is_logged_and_counted_and_the_checkpoint_stands(
    open_log: Opener, db_path: Path, command: str
) -> None:
    log = open_log(witness=witness_argv(command))
    log.run_started(run_id="run-1", trigger="manual", settings_summary={})
    with capture_logs() as logs:
        sealed = log.checkpoint()
        log.checkpoint()
    log.close()
    assert log.witness_failures == 2
    assert [e["event"] for e in logs].count("audit_witness_failed") == 2
    first = (db_path.parent / "audit-checkpoints.jsonl").read_text().splitlines()[0]
    assert json.loads(first)["head"] == sealed.head
