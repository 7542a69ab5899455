"""The apply prompt on a terminal: the summary, then `Proceed? [y/N]`, no bar over it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from typing import Any

import pytest
from support import REPO, Deployment

pytestmark = pytest.mark.e2e

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
_BAR = "━"
PROMPT = "Proceed? [y/N]"


def answer_on_a_terminal(
    deployment: Deployment, args: list[str], answer: str | None
) -> tuple[int, str, str]:
    """Run the CLI on a pty, wait for the prompt, type `answer`; (exit, before, after).

    With `answer` None no prompt is expected: everything shown is `after`.
    """
    main, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "retention", *args],
        stdin=side,
        stdout=side,
        stderr=side,
        cwd=REPO,
        env={**deployment.env, "COLUMNS": "100", "TERM": "xterm"},
    )
    os.close(side)
    seen = b""
    answered = False
    before = ""
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # the other end closed: the process is gone
                    break
                if not chunk:
                    break
                seen += chunk
            if answer is None:
                pass
            elif not answered and PROMPT in _ANSI.sub("", seen.decode(errors="replace")):
                before = seen.decode(errors="replace")
                os.write(main, answer.encode() + b"\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
    assert answered or answer is None, f"no prompt came:\n{seen.decode(errors='replace')}"
    return code, before, seen.decode(errors="replace")[len(before) :]


def declined_apply(deployment: Deployment) -> tuple[list[dict[str, Any]], int, str, str]:
    """Today's plan saved, then `n` typed at the prompt of `apply PLAN`: its items, and the
    exit, before and after of `answer_on_a_terminal`."""
    plan_file = deployment.saved_plan()
    items = json.loads(plan_file.read_text())["items"]
    code, before, after = answer_on_a_terminal(deployment, ["apply", str(plan_file)], "n")
    return items, code, before, after


def test_declining_exits_3_removes_nothing_and_records_the_refusal(
    deployment: Deployment,
) -> None:
    items, code, before, after = declined_apply(deployment)

    assert code == 3
    assert "cancelled, nothing removed" in after
    assert "reason: declined" in after
    assert "Traceback" not in before + after
    assert deployment.deletes() == []
    shown = _ANSI.sub("", before)
    assert _BAR not in shown, "no progress bar before the answer"
    prompt_line = next(line for line in shown.splitlines() if PROMPT in line)
    assert prompt_line.strip().startswith(PROMPT)
    assert f"About to make {len(items)} removals on" in " ".join(shown.split())
    refused = [e for e in deployment.events() if e["event"] == "refused"]
    assert [e["reason"] for e in refused] == ["declined"]


def test_the_summary_counts_per_action_and_the_parts_add_up(deployment: Deployment) -> None:
    items, _code, before, _after = declined_apply(deployment)

    summary = " ".join(_ANSI.sub("", before).split())
    found = re.search(
        r"About to make (\d+) removals on (\d+) distinct sessions: (\d+) recordings? \(.+?\), "
        r"(\d+) attendee lists?, (\d+) whole sessions?",
        summary,
    )
    assert found, summary
    total, sessions, recordings, attendees, whole = map(int, found.groups())
    assert total == len(items) == recordings + attendees + whole
    assert sessions == len({item["sessionId"] for item in items})


def test_answering_yes_removes_and_counts_removals(deployment: Deployment) -> None:
    code, before, after = answer_on_a_terminal(deployment, ["run"], "y")

    assert code == 0, after
    assert deployment.deletes()
    assert _BAR not in _ANSI.sub("", before)
    assert "bytes/s" not in after
    assert re.search(r"\d+/\d+ removals", _ANSI.sub("", after)), "the bar counts removals"
    assert "Outcomes:" in after
    assert "deleted" in after


def test_nothing_to_remove_asks_nothing(deployment: Deployment) -> None:
    deployment.cli("run", "--yes", check=True)
    removed = len(deployment.deletes())

    code, _before, after = answer_on_a_terminal(deployment, ["run"], None)

    assert code == 0, after
    assert PROMPT not in _ANSI.sub("", after)
    assert "nothing to remove" in after
    assert len(deployment.deletes()) == removed
