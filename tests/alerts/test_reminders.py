"""Approvers are reminded of a waiting proposal by mail, at most once per repeat, with a link.

In-process: a review-mode daemon on the sandbox, a loopback SMTP server, a clock the test moves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from approvers import make_key
from routes import Folder, World, invoke

from retention.service.daemon import Daemon
from retention.service.notify import Notifier

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_waiting_proposals_remind_each_approver_who_has_not_signed(
    tmp_path: Path, smtp: tuple[Any, str]
) -> None:
    box, url = smtp
    world = World.make(tmp_path)
    world.write(Folder(period_days=1))
    ana, bob = make_key(world.root / "keys", "ana"), make_key(world.root / "keys", "bob")
    (world.root / "approvers").write_text(
        f"ana@example.com {ana.public_line}\nbob@example.com {bob.public_line}\n"
    )
    clock = Clock()
    settings = world.settings(
        daemon_mode="review",
        approvers=str(world.root / "approvers"),
        approvals_required=2,
        smtp_url=url,
        notice_from="retention@example.com",
        notify_repeat="1h",
        console_origin="https://retention.example.com",
        max_clock_skew=86_400,
    )
    daemon = Daemon(settings, Notifier(None), clock=clock, transport=world.spy)
    daemon.load()

    await daemon.run_due(daemon.schedules[0].spec)
    (proposal,) = sorted((world.state_dir / "plans").glob("*.json"))
    reminded = sorted(rcpt for _sender, rcpts, _m in box.messages for rcpt in rcpts)
    assert reminded == ["ana@example.com", "bob@example.com"]
    body = box.messages[0][2].get_content()
    assert f"https://retention.example.com/proposals/{proposal.name}" in body

    clock.now += timedelta(minutes=30)
    await daemon.run_due(daemon.schedules[0].spec)
    assert len(box.messages) == 2, "not again within RETENTION_NOTIFY_REPEAT"

    done = invoke(
        world,
        "approve",
        str(proposal),
        "--key",
        str(ana.key),
        RETENTION_DAEMON_MODE="review",
        RETENTION_APPROVERS=str(world.root / "approvers"),
        RETENTION_APPROVALS_REQUIRED="2",
    )
    assert done.exit_code == 0, done.output
    clock.now += timedelta(hours=1)
    await daemon.run_due(daemon.schedules[0].spec)
    again = [rcpt for _sender, rcpts, _m in box.messages[2:] for rcpt in rcpts]
    assert again == ["bob@example.com"], "only who has not signed, once the repeat passed"
