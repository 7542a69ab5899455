"""The console in-process on the sandbox: who may see it, its pages, passkey approvals and their
refusals, and a decision with an item postponed applied by the review-mode daemon."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from approvers import make_key
from authenticator import SoftKey
from routes import Folder, World, invoke

from retention.approvals.store import read_approvals, tally_of
from retention.audit.store import connect_reader
from retention.console.app import console_app
from retention.service.daemon import Daemon
from retention.service.notify import Notifier
from retention.service.statedir import reader
from retention.settings import Settings

pytestmark = pytest.mark.anyio

ORIGIN = "http://localhost:8080"
HOSTILE = '<script>alert("subject")</script><img src=x onerror=alert(1)>'
PROXY = ("127.0.0.1", 50000)


@dataclass
class Console:
    world: World
    daemon: Daemon
    ana: SoftKey
    bob: SoftKey
    proposal: Path

    def client(self, peer: tuple[str, int] = PROXY) -> httpx.AsyncClient:
        app = console_app(self.daemon.settings, self.daemon.health.report, self.daemon.clock)
        transport = httpx.ASGITransport(app=app, client=peer)
        return httpx.AsyncClient(transport=transport, base_url=ORIGIN)

    def lines(self) -> int:
        return len(read_approvals(self.proposal))


def as_user(email: str) -> dict[str, str]:
    return {"X-Forwarded-Email": email}


def posting(email: str) -> dict[str, str]:
    return {**as_user(email), "Origin": ORIGIN, "Content-Type": "application/json"}


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[Console]:
    world = World.make(tmp_path)
    for key in sorted(world.account.meetings)[::2]:
        meetings = world.account.meetings
        meetings[key] = dataclasses.replace(meetings[key], subject=HOSTILE)
    world.write(Folder(period_days=1))
    ssh = make_key(world.root / "keys", "carl")
    (world.root / "approvers").write_text(f"carl@example.com {ssh.public_line}\n")
    ana, bob = SoftKey("ana@example.com"), SoftKey("bob@example.com", "eddsa")
    (world.root / "passkeys").write_text(f"{ana.line()}\n{bob.line()}\n")
    settings = world.settings(
        daemon_mode="review",
        approvers=str(world.root / "approvers"),
        approvals_required=2,
        approver_passkeys=str(world.root / "passkeys"),
        console_origin=ORIGIN,
        console_trusted_proxies="127.0.0.1, ::1",
        console_viewers="viv@example.com",
        audit_subject="keep",
    )
    daemon = Daemon(settings, Notifier(None), transport=world.spy)
    daemon.load()
    await daemon.run_due(daemon.schedules[0].spec)
    (proposal,) = sorted((world.state_dir / "plans").glob("*.json"))
    return Console(world, daemon, ana, bob, proposal)


async def sign(
    console: Console,
    key: SoftKey,
    choice: dict[str, Any],
    *,
    origin: str = ORIGIN,
    as_who: str | None = None,
) -> httpx.Response:
    """The ceremony as the page's script runs it: challenge, assertion, approval."""
    who = as_who or key.principal
    name = console.proposal.name
    async with console.client() as client:
        asked = await client.post(f"/proposals/{name}/challenge", json=choice, headers=posting(who))
        assert asked.status_code == 200, asked.text
        body = asked.json()
        credential = key.assertion(body["options"]["challenge"], origin, "localhost")
        return await client.post(
            f"/proposals/{name}/approve",
            json={
                "verdict": body["verdict"],
                "reason": body["reason"],
                "decision": body["decision"],
                "issued_at": body["issued_at"],
                "comment": "checked",
                "credential": credential,
            },
            headers=posting(who),
        )


def first_item(console: Console) -> dict[str, Any]:
    item: dict[str, Any] = json.loads(console.proposal.read_text())["items"][0]
    return item


async def test_without_a_trusted_identity_nothing_is_shown(console: Console) -> None:
    async with console.client() as client:
        anonymous = await client.get("/")
        unlisted = await client.get("/", headers=as_user("eve@example.com"))
    async with console.client(("10.9.9.9", 4000)) as untrusted:
        spoofed = await untrusted.get("/", headers=as_user("viv@example.com"))
        forged = await untrusted.post(
            f"/proposals/{console.proposal.name}/approve",
            json={},
            headers=posting("ana@example.com"),
        )
    assert anonymous.status_code == 401
    assert unlisted.status_code == 403
    assert spoofed.status_code == 401, "the header from an untrusted address is ignored"
    assert forged.status_code == 401
    for answer in (anonymous, unlisted, spoofed):
        assert "proposal" not in answer.text.lower()
        assert "<html" not in answer.text
    assert console.lines() == 0


async def test_the_overview_lists_the_proposal_with_a_link_and_a_strict_policy(
    console: Console,
) -> None:
    async with console.client() as client:
        page = await client.get("/", headers=as_user("viv@example.com"))
        style = await client.get("/static/console.css", headers=as_user("viv@example.com"))
    assert page.status_code == 200
    assert 'id="status"' in page.text
    assert 'id="proposals"' in page.text
    assert f'href="/proposals/{console.proposal.name}"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert "<script>" not in page.text
    assert "style=" not in page.text
    assert style.status_code == 200


async def test_the_proposal_page_shows_every_section_and_hostile_text_inert(
    console: Console,
) -> None:
    async with console.client() as client:
        page = await client.get(
            f"/proposals/{console.proposal.name}", headers=as_user("ana@example.com")
        )
        search = await client.get(
            f"/proposals/{console.proposal.name}",
            params={"subject": "alert"},
            headers=as_user("viv@example.com"),
        )
    for section in ("summary", "policies", "items", "blocked", "changes", "approvals"):
        assert f'id="{section}"' in page.text, section
    assert 'id="decide"' in page.text, "an approver may decide"
    assert 'id="decide"' not in search.text, "a viewer may not"
    assert HOSTILE not in page.text
    assert "&lt;script&gt;alert(" in page.text
    shown = re.findall(r'<tr class="item"', search.text)
    planned = json.loads(console.proposal.read_text())["items"]
    assert 0 < len(shown) < len(planned), "the search by subject narrows the items"


async def test_explain_and_the_record(console: Console) -> None:
    item = first_item(console)
    async with console.client() as client:
        explained = await client.get(
            "/explain", params={"session": item["sessionId"]}, headers=as_user("viv@example.com")
        )
        record = await client.get("/record", headers=as_user("viv@example.com"))
        report = await client.get("/record/report", headers=as_user("viv@example.com"))
        again = await client.get("/record/report", headers=as_user("viv@example.com"))
    assert 'id="verdicts"' in explained.text
    assert item["sessionId"] in explained.text
    assert ">due<" in explained.text
    assert 'id="record"' in record.text
    assert report.status_code == 200
    assert "Retention audit report" in report.text
    assert "style-src 'sha256-" in report.headers["content-security-policy"]
    assert again.text == report.text, "the period's report is cached"


async def test_a_passkey_registration_gives_the_line_to_list(console: Console) -> None:
    newcomer = SoftKey("ana@example.com")
    async with console.client() as client:
        options = await client.post(
            "/passkeys/options", json={}, headers=posting("ana@example.com")
        )
        assert options.status_code == 200, options.text
        made = newcomer.attestation(options.json()["challenge"], ORIGIN, "localhost")
        line = await client.post(
            "/passkeys/register", json=made, headers=posting("ana@example.com")
        )
    assert line.status_code == 200, line.text
    principal, credential_id, key, *_ = line.json()["line"].split()
    assert (principal, credential_id) == ("ana@example.com", newcomer.id)
    assert key == newcomer.line().split()[2]
    assert "registered" not in (console.world.root / "passkeys").read_text(), "never self-listed"


async def test_refusals_write_nothing(console: Console) -> None:
    name = console.proposal.name
    whole = {"decision": json.loads(console.proposal.read_text())["plan_hash"]}
    stranger = SoftKey("ana@example.com")
    async with console.client() as client:
        asked = (
            await client.post(
                f"/proposals/{name}/challenge", json={}, headers=posting("ana@example.com")
            )
        ).json()
        other = dict(asked["decision"], plan_hash="0" * 64)

        async def post(body: dict[str, Any], who: str = "ana@example.com", **headers: str) -> int:
            answer = await client.post(
                f"/proposals/{name}/approve", json=body, headers={**posting(who), **headers}
            )
            return answer.status_code

        def answer(key: SoftKey, origin: str = ORIGIN, challenge: str | None = None) -> Any:
            return key.assertion(challenge or asked["options"]["challenge"], origin, "localhost")

        base = {"decision": asked["decision"], "issued_at": asked["issued_at"]}
        assert await post({**base}) == 400, "a forged post without an assertion"
        form = await client.post(
            f"/proposals/{name}/approve",
            content="decision=x",
            headers={
                **as_user("ana@example.com"),
                "Origin": ORIGIN,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        assert form.status_code == 400, "a form post"
        assert (
            await post({**base, "credential": answer(console.ana)}, Origin="https://evil.example")
            == 403
        )
        assert (
            await post({**base, "credential": answer(console.ana, "https://evil.example")}) == 403
        )
        assert await post({**base, "decision": other, "credential": answer(console.ana)}) == 400
        assert await post({**base, "credential": answer(stranger)}) == 403, "an unlisted credential"
        assert await post({**base, "credential": answer(console.ana)}, who="bob@example.com") == 403
        assert await post({**base, "credential": answer(console.ana, challenge="AAAA")}) == 403
        assert console.lines() == 0
        assert await post({**base, "credential": answer(console.ana)}) == 201
        assert await post({**base, "credential": answer(console.ana)}) == 403, "a replay"
    again = await sign(console, console.ana, whole)
    assert again.status_code == 403, "two approvals by one principal"
    assert console.lines() == 1


async def test_two_passkeys_approve_one_decision_and_the_daemon_applies_it(
    console: Console,
) -> None:
    item = first_item(console)
    choice = {
        "items": [f"{item['sessionId']} {item['action']}"],
        "until": "2099-01-01",
        "reason": "matter <b>12</b>",
    }
    first = await sign(console, console.ana, choice)
    assert first.status_code == 201, first.text
    async with console.client() as client:
        page = await client.get(
            f"/proposals/{console.proposal.name}", headers=as_user("bob@example.com")
        )
    (decision,) = re.findall(r'data-decision="([0-9a-f]{64})"', page.text)
    second = await sign(console, console.bob, {"decision": decision})
    assert second.status_code == 201, second.text
    assert second.json()["approvals"] == 2

    await console.daemon.run_due(console.daemon.schedules[0].spec)

    removed = {str(session) for session, _action in console.world.spy.deleted}
    assert item["sessionId"] not in removed
    assert removed, "the other items were removed"
    conn = connect_reader(console.world.state_dir / "audit.db")
    try:
        (data,) = conn.execute(
            "SELECT data FROM events WHERE event = 'plan_approved' AND data LIKE '%approvers%'"
        ).fetchone()
    finally:
        conn.close()
    approved = json.loads(data)
    assert {a["principal"] for a in approved["approvers"]} == {"ana@example.com", "bob@example.com"}
    assert {a["credential_id"] for a in approved["approvers"]} == {console.ana.id, console.bob.id}
    assert approved["exclusions"] == [
        {
            "sessionId": item["sessionId"],
            "action": item["action"],
            "until": "2099-01-01",
            "reason": "matter <b>12</b>",
            "by": "ana@example.com",
        }
    ]

    # The auditor's recipe, as docs/audit.md writes it, verifies both assertions.
    applied = console.proposal.parent / "applied" / f"{console.proposal.name}.approvals"
    shown = {
        a["principal"]: run_recipe(
            console.world.root, applied, console.world.root / "passkeys", a["principal"]
        )
        for a in approved["approvers"]
    }
    assert "Verified OK" in shown["ana@example.com"], "ES256 through openssl dgst"
    assert "Signature Verified Successfully" in shown["bob@example.com"], "Ed25519, pkeyutl"
    for a in approved["approvers"]:
        assert a["fingerprint"] in shown[a["principal"]]

    # The postponement is listed, and an approver lifts it with a passkey.
    removal = {"sessionId": item["sessionId"], "action": item["action"]}
    async with console.client() as client:
        before = await client.get("/", headers=as_user("viv@example.com"))
        forged = await client.post(
            "/postponements/lift", json=removal, headers=posting("bob@example.com")
        )
    assert f'data-session="{item["sessionId"]}"' in before.text.split('id="postponed"')[1]
    assert forged.status_code == 400, "no assertion: nothing lifted"
    lifted = await lift(console, console.bob, removal)
    assert lifted.status_code == 200, lifted.text
    db = reader(console.world.state_dir / "state.db")
    try:
        row = next(db.query("SELECT lifted_by, lifted_at FROM postponements"))
    finally:
        db.close()
    assert row["lifted_by"] == "bob@example.com"
    assert (await lift(console, console.bob, removal)).status_code == 404, "lifted already"


async def lift(console: Console, key: SoftKey, removal: dict[str, str]) -> httpx.Response:
    async with console.client() as client:
        asked = await client.post(
            "/postponements/challenge", json=removal, headers=posting(key.principal)
        )
        assert asked.status_code == 200, asked.text
        body = asked.json()
        return await client.post(
            "/postponements/lift",
            json={
                **removal,
                "issued_at": body["issued_at"],
                "credential": key.assertion(body["options"]["challenge"], ORIGIN, "localhost"),
            },
            headers=posting(key.principal),
        )


def auditor_recipe() -> str:
    """The shell block of docs/audit.md's "Approvals signed with passkeys", its inputs left out."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "audit.md").read_text()
    section = text.split("## Approvals signed with passkeys", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    inputs = ("approvals=", "who=")
    return "\n".join(line for line in block.splitlines() if not line.startswith(inputs))


def run_recipe(folder: Path, approvals: Path, passkeys: Path, who: str) -> str:
    script = (
        f"approvals={shlex.quote(str(approvals))} passkeys={shlex.quote(str(passkeys))}\n"
        f"who={shlex.quote(who)} origin={ORIGIN} rp=localhost\n" + auditor_recipe()
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_an_approval_whose_passkey_line_is_removed_stops_counting(console: Console) -> None:
    whole = {"decision": json.loads(console.proposal.read_text())["plan_hash"]}
    assert (await sign(console, console.ana, whole)).status_code == 201
    proposal = next(iter(console.daemon.settings.proposals_dir.glob("*.json")))
    plan_hash = whole["decision"]
    assert len(tally_of(proposal, plan_hash, console.daemon.settings).valid) == 1
    (console.world.root / "passkeys").write_text(console.bob.line() + "\n")
    assert len(tally_of(proposal, plan_hash, console.daemon.settings).valid) == 0


async def test_an_approval_withdrawn_stops_counting_and_a_rejection_sets_the_proposal_aside(
    console: Console,
) -> None:
    plan_hash = json.loads(console.proposal.read_text())["plan_hash"]
    settings = console.daemon.settings
    assert (await sign(console, console.ana, {"decision": plan_hash})).status_code == 201
    assert len(tally_of(console.proposal, plan_hash, settings).valid) == 1

    withdrawn = await sign(console, console.ana, {"withdraw": plan_hash})
    assert withdrawn.status_code == 201, withdrawn.text
    assert len(tally_of(console.proposal, plan_hash, settings).valid) == 0
    async with console.client() as client:
        nothing = await client.post(
            f"/proposals/{console.proposal.name}/challenge",
            json={"withdraw": plan_hash},
            headers=posting("bob@example.com"),
        )
    assert nothing.status_code == 400, "bob approved nothing to withdraw"

    rejected = await sign(console, console.bob, {"reject": "the <Legal> review is not done"})
    assert rejected.status_code == 201, rejected.text
    await console.daemon.run_due(console.daemon.schedules[0].spec)

    assert console.world.spy.deleted == []
    assert (console.proposal.parent / "refused" / console.proposal.name).exists()
    conn = connect_reader(console.world.state_dir / "audit.db")
    try:
        rows = conn.execute("SELECT data FROM events WHERE event = 'refused'").fetchall()
    finally:
        conn.close()
    (refusal,) = [json.loads(row[0]) for row in rows if "rejected" in row[0]]
    assert refusal["reason"] == "rejected"
    assert refusal["details"]["by"][0]["principal"] == "bob@example.com"
    assert refusal["details"]["by"][0]["reason"] == "the <Legal> review is not done"


async def test_an_ssh_approval_of_the_saved_decision_counts_with_a_passkey_one(
    console: Console,
) -> None:
    item = first_item(console)
    choice = {
        "items": [f"{item['sessionId']} {item['action']}"],
        "until": "2099-01-01",
        "reason": "kept for the audit",
    }
    assert (await sign(console, console.ana, choice)).status_code == 201
    async with console.client() as client:
        page = await client.get(
            f"/proposals/{console.proposal.name}", headers=as_user("carl@example.com")
        )
        (link,) = re.findall(r'href="(/proposals/[^"]+/decisions/[0-9a-f]{64}\.json)"', page.text)
        document = await client.get(link, headers=as_user("carl@example.com"))
    saved = console.world.root / "decision.json"
    saved.write_bytes(document.content)

    done = invoke(
        console.world,
        "approve",
        str(console.proposal),
        "--key",
        str(console.world.root / "keys" / "carl"),
        "--decision",
        str(saved),
        RETENTION_DAEMON_MODE="review",
        RETENTION_APPROVERS=str(console.world.root / "approvers"),
        RETENTION_APPROVALS_REQUIRED="2",
        RETENTION_APPROVER_PASSKEYS=str(console.world.root / "passkeys"),
        RETENTION_CONSOLE_ORIGIN=ORIGIN,
    )
    assert done.exit_code == 0, done.output
    assert "2 of 2 approvals (ana@example.com, carl@example.com)" in done.output
    await console.daemon.run_due(console.daemon.schedules[0].spec)

    removed = {str(session) for session, _action in console.world.spy.deleted}
    assert removed, "applied"
    assert item["sessionId"] not in removed


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("console_trusted_proxies", "127.0.0.1, proxy.example.com"),
        ("console_origin", "retention.example.com"),
        ("console_origin", "https://retention.example.com/console"),
    ],
)
def test_console_settings_that_cannot_hold_are_refused(setting: str, value: str) -> None:
    with pytest.raises(ValueError, match="not an"):
        Settings(**{setting: value})


def test_passkeys_alone_may_approve(tmp_path: Path) -> None:
    passkeys = tmp_path / "passkeys"
    passkeys.write_text(SoftKey("ana@example.com").line() + "\n")
    alone = {"approvals_required": 1, "approver_passkeys": str(passkeys)}
    assert Settings(**alone, console_origin=ORIGIN).approvers_file is None
    with pytest.raises(ValueError, match="no approval could ever count"):
        Settings(**alone)
    with pytest.raises(ValueError, match="no approval could ever count"):
        Settings(approvals_required=1, approvers=str(tmp_path / "nowhere"))
