"""The console in headless Chromium with the DevTools virtual authenticator, end to end.

The review-mode daemon serves the console on loopback (as behind the proxy: the browser sends
the identity header, the daemon trusts 127.0.0.1). Two approvers register passkeys, the operator
lists the lines the page gives them, both approve one proposal with one item postponed, the
daemon applies it: the postponed item is not removed and is blocked `by: review:…`, and the
record names both approvers and the postponement. Hostile subjects stay text.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from approvers import make_key
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from routes import Folder, World

from retention.audit.store import connect_reader
from retention.service.daemon import Daemon
from retention.service.notify import Notifier

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
IDS = ("status", "proposals", "summary", "policies", "items", "blocked", "changes", "approvals")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.browser,
    pytest.mark.e2e,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, email: str) -> tuple[BrowserContext, Page]:
    """A browser as the proxy passes it on (the identity header), with a virtual passkey."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900},
        extra_http_headers={"X-Forwarded-Email": email},
    )
    page = await context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return context, page


async def register(page: Page, origin: str) -> str:
    await page.goto(f"{origin}/passkeys")
    await page.click("#register-passkey")
    line = page.locator("#passkey-line")
    await expect(line).not_to_be_empty()
    return await line.inner_text()


def events(world: World, kind: str) -> list[dict[str, Any]]:
    conn = connect_reader(world.state_dir / "audit.db")
    try:
        rows = conn.execute("SELECT data FROM events WHERE event = ?", [kind]).fetchall()
    finally:
        conn.close()
    return [json.loads(row[0]) for row in rows]


async def test_two_approvers_approve_with_passkeys_and_the_daemon_applies_it(
    tmp_path: Path, browser: Browser
) -> None:
    world = World.make(tmp_path)
    for key in sorted(world.account.meetings)[::2]:
        meetings = world.account.meetings
        meetings[key] = dataclasses.replace(meetings[key], subject=HOSTILE)
    group = min(world.account.groups)
    world.account.groups[group] = dataclasses.replace(
        world.account.groups[group], name='"><svg onload="window.pwned = 3">'
    )
    world.write(Folder(period_days=1))
    ssh = make_key(world.root / "keys", "carl")
    (world.root / "approvers").write_text(f"carl@example.com {ssh.public_line}\n")
    passkeys = world.root / "passkeys"
    passkeys.write_text("")
    port = free_port()
    origin = f"http://localhost:{port}"
    settings = world.settings(
        daemon_mode="review",
        approvers=str(world.root / "approvers"),
        approvals_required=2,
        approver_passkeys=str(passkeys),
        console_address=f"127.0.0.1:{port}",
        console_origin=origin,
        console_trusted_proxies="127.0.0.1",
        # Not approvers until the operator lists their passkeys: viewers, to register them.
        console_viewers="viv@example.com, ana@example.com, bob@example.com",
        audit_subject="keep",
    )
    daemon = Daemon(settings, Notifier(None), transport=world.spy)
    daemon.load()
    await daemon.run_due(daemon.schedules[0].spec)
    (proposal,) = sorted((world.state_dir / "plans").glob("*.json"))
    item = json.loads(proposal.read_text())["items"][0]

    # In-process the scheduler is not started (the test fires the runs): the overview shows
    # the health a running daemon reports.
    daemon.health.scheduler_running = True
    async with daemon.console():
        ana_context, ana = await signed_in(browser, "ana@example.com")
        bob_context, bob = await signed_in(browser, "bob@example.com")
        # Each approver registers; the operator lists the lines the page gave them.
        lines = [await register(ana, origin), await register(bob, origin)]
        passkeys.write_text("\n".join(lines) + "\n")

        await ana.goto(origin)
        for section in IDS[:2]:
            await expect(ana.locator(f"#{section}")).to_be_visible()
        await ana.click(f'#proposals a[href="/proposals/{proposal.name}"]')
        for section in IDS[2:]:
            await expect(ana.locator(f"#{section}")).to_be_attached()
        await ana.check(f'input[name=item][value="{item["sessionId"]} {item["action"]}"]')
        await ana.fill("input[name=until]", "2099-01-01")
        await ana.fill("input[name=reason]", "kept for the <matter>")
        await ana.click("#decide button[type=submit]")
        await expect(ana.locator("#approvals")).to_contain_text("1 of 2 approvals count")

        await bob.goto(origin)
        await bob.screenshot(path=tmp_path / "console-overview.png")
        await bob.goto(f"{origin}/proposals/{proposal.name}")
        await bob.screenshot(path=tmp_path / "console-proposal.png")
        await bob.click(".sign-decision")
        await expect(bob.locator("#approvals")).to_contain_text("2 of 2 approvals count")
        await expect(bob.locator("#approvals")).to_contain_text("kept for the <matter>")
        assert await bob.evaluate("window.pwned") is None, "no hostile script ran"
        subjects = bob.locator("#items td.subject", has_text="window.pwned")
        assert await subjects.count() > 0, "the hostile subject shows as text"
        names = bob.locator("#items td", has_text="<svg onload")
        assert await names.count() > 0, "the hostile group name shows as text"

        await bob.set_viewport_size({"width": 390, "height": 844})
        for path in ("/", f"/proposals/{proposal.name}", f"/explain?session={item['sessionId']}"):
            await bob.goto(origin + path)
            width = await bob.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} fits a phone's width (wide tables scroll in place)"

        await daemon.run_due(daemon.schedules[0].spec)

        viewer_context, viewer = await signed_in(browser, "viv@example.com")
        await viewer.goto(origin)
        await expect(viewer.locator("#postponed")).to_contain_text(item["sessionId"])
        assert await viewer.evaluate("window.pwned") is None
        await viewer.goto(f"{origin}/explain?session={item['sessionId']}")
        await expect(viewer.locator("#verdicts")).to_contain_text("review:ana@example.com")
        await viewer.goto(f"{origin}/record")
        report = viewer.frame_locator("#record")
        await expect(report.locator("body")).to_contain_text("ana@example.com")
        await expect(report.locator("body")).to_contain_text("bob@example.com")
        postponed = report.locator(f'.exclusion[data-session="{item["sessionId"]}"]')
        await expect(postponed).to_contain_text("until 2099-01-01 by ana@example.com")
        await expect(postponed).to_contain_text("kept for the <matter>")
        for context in (ana_context, bob_context, viewer_context):
            await context.close()

    removed = {str(session) for session, _action in world.spy.deleted}
    assert item["sessionId"] not in removed
    assert removed, "the other items were removed"
    (approved,) = [e for e in events(world, "plan_approved") if e.get("approvers")]
    assert {a["principal"] for a in approved["approvers"]} == {
        "ana@example.com",
        "bob@example.com",
    }
    assert approved["exclusions"] == [
        {
            "sessionId": item["sessionId"],
            "action": item["action"],
            "until": "2099-01-01",
            "reason": "kept for the <matter>",
            "by": "ana@example.com",
        }
    ]
