"""The run session in-process: real lock, state and audit files in tmp_path, preflight checks."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fakeapi import POLICY

from retention.audit.store import connect_reader
from retention.errors import Refused, RuntimeFailure
from retention.policy import PolicySet, load_policy_set
from retention.service.lock import InstanceLocked, acquire
from retention.service.session import Check, Opening, open_session
from retention.service.statedir import LockWait, RunStopped
from retention.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "policies.yaml").write_text(POLICY)
    return Settings(state_dir=tmp_path / "state", policy_dir=folder)


@pytest.fixture
def policy_set(settings: Settings) -> PolicySet:
    return load_policy_set([settings.policy_dir])


def events(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    if not settings.audit_db.exists():
        return []
    conn = connect_reader(settings.audit_db)
    try:
        rows = conn.execute("SELECT event, data FROM events ORDER BY seq").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    # The checkpoint row that closes each run is left out: what is tested is what runs write.
    return [(str(e), json.loads(data or "{}")) for e, data in rows if e != "checkpoint"]


def opened(settings: Settings, policy_set: PolicySet, **options: Any) -> Any:
    return open_session(
        settings,
        policy_set,
        trigger="run",
        clock=lambda: datetime.now(UTC),
        stop=options.pop("stop", asyncio.Event()),
        **options,
    )


def refuse(reason: str, *, failure: bool = False) -> Check:
    def check(_opening: Opening) -> None:
        kind = RuntimeFailure if failure else Refused
        raise kind(f"refused for {reason}", reason=reason)  # type: ignore[arg-type]

    return Check(f"check {reason}", check)


async def test_a_run_records_its_start_and_its_end(
    settings: Settings, policy_set: PolicySet
) -> None:
    async with opened(settings, policy_set) as session:
        assert session is not None
        session.tally.counts = {"planned": 0}

    names = [name for name, _ in events(settings)]
    assert names == ["run_started", "policy_loaded", "run_finished"]
    assert events(settings)[-1][1]["result"] == "ok"


async def test_a_body_that_raises_still_ends_the_run_failed(
    settings: Settings, policy_set: PolicySet
) -> None:
    with pytest.raises(RuntimeFailure):
        async with opened(settings, policy_set):
            raise RuntimeFailure("the API went away")

    assert events(settings)[-1][0] == "run_finished"
    assert events(settings)[-1][1]["result"] == "failed"


async def test_a_cancelled_run_still_records_its_end(
    settings: Settings, policy_set: PolicySet
) -> None:
    async def body() -> None:
        async with opened(settings, policy_set):
            await asyncio.sleep(3600)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert events(settings)[-1][0] == "run_finished"
    assert events(settings)[-1][1]["result"] == "failed"


async def test_checks_run_in_order_and_the_first_failure_refuses_with_its_reason(
    settings: Settings, policy_set: PolicySet
) -> None:
    ran: list[str] = []
    checks = [
        Check("first", lambda _o: ran.append("first")),
        refuse("stale_plan"),
        Check("third", lambda _o: ran.append("third")),
    ]
    with pytest.raises(Refused) as refused:
        async with opened(settings, policy_set, checks=checks):
            ran.append("body")

    assert ran == ["first"], "neither a later check nor the body ran"
    assert refused.value.exit_code == 3
    recorded = events(settings)
    assert [name for name, _ in recorded] == [
        "run_started",
        "policy_loaded",
        "refused",
        "run_finished",
    ]
    assert recorded[2][1]["details"]["check"] == "check stale_plan"
    assert recorded[3][1]["result"] == "refused"


async def test_a_failed_check_guarding_the_record_writes_nothing_to_it(
    settings: Settings, policy_set: PolicySet
) -> None:
    guard = Check("audit chain", refuse("audit_unverified", failure=True).run, guards_audit=True)
    with pytest.raises(RuntimeFailure) as failed:
        async with opened(settings, policy_set, checks=[guard]):
            pytest.fail("the body must not run")

    assert failed.value.exit_code == 1
    assert failed.value.reason == "audit_unverified"
    assert events(settings) == []


async def test_a_session_refuses_at_once_when_another_process_holds_the_lock(
    settings: Settings, policy_set: PolicySet
) -> None:
    with (
        acquire(settings.state_dir, command="retention apply"),
        pytest.raises(InstanceLocked) as locked,
    ):
        async with opened(settings, policy_set):
            pytest.fail("the body must not run")
    assert "retention apply" in locked.value.message


async def test_a_waiting_session_starts_once_the_lock_is_free_and_holds_it_throughout(
    settings: Settings, policy_set: PolicySet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("retention.service.statedir.LOCK_POLL_SECONDS", 0.01)
    told: list[str] = []
    holder = acquire(settings.state_dir, command="retention run")
    holder.__enter__()

    async def release_soon() -> None:
        await asyncio.sleep(0.1)
        holder.__exit__(None, None, None)

    releasing = asyncio.create_task(release_soon())
    wait = LockWait(None, on_wait=lambda exc: told.append(exc.holder.describe()))
    async with opened(settings, policy_set, lock=wait) as session:
        assert session is not None
        with pytest.raises(InstanceLocked), acquire(settings.state_dir):
            pass
    await releasing
    assert len(told) == 1, "told once that it waits, naming the holder"


async def test_a_stop_ends_the_wait_for_the_lock_without_a_run(
    settings: Settings, policy_set: PolicySet
) -> None:
    stop = asyncio.Event()
    stop.set()
    with acquire(settings.state_dir, command="retention run"), pytest.raises(RunStopped):
        async with opened(settings, policy_set, lock=LockWait(None), stop=stop):
            pytest.fail("the body must not run")
    assert events(settings) == []


async def test_a_start_up_with_nothing_pending_records_no_run(
    settings: Settings, policy_set: PolicySet
) -> None:
    async with opened(settings, policy_set, opens_run=lambda _audit: False) as session:
        assert session is None

    assert events(settings) == []
