"""Bad input and a bad environment: one message naming the input, the right exit code, no
traceback, no DELETE, and the state as it was.

Each case runs the real CLI as a subprocess against a sandbox: policy folders holding what is
not a policy file, a damaged state database, a full disk, bad settings and arguments.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support import invoke_retention

from retention import examples
from retention.cli.app import RetentionGroup
from retention.cli.failures import known_failure
from retention.service.logging import register_secret

from .conftest import Service

SANDBOX = ("--seed", "5", "--days", "90", "--sessions-per-day", "3")
DEPLOY = examples.SYSTEMD
HOLD_ALL = "holds:\n  - id: FREEZE-1\n    reason: counsel asked\n    all: true\n"


def clean(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback, no exception group, one `error:` line."""
    assert "Traceback" not in result.stderr, result.stderr
    assert "ExceptionGroup" not in result.stderr, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")], result.stderr


def state_rows(deployed: Service) -> int:
    with sqlite3.connect(deployed.state_dir / "state.db") as db:
        return int(db.execute("SELECT count(*) FROM sessions").fetchone()[0])


@pytest.fixture
def scanned(service: Callable[..., Service]) -> Service:
    """A deployment whose inventory is filled and whose removals are due."""
    deployed = service(*SANDBOX)
    assert deployed.cli("inventory").returncode == 0
    return deployed


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def make_dir(path: Path) -> None:
    path.mkdir()


def make_text(path: Path) -> None:
    path.write_text(HOLD_ALL)


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("x.yaml", make_fifo),
        ("zero.yaml", make_zero),
        ("dir.yaml", make_dir),
        ("holds.json", make_text),
        ("holds.yaml.bak", make_text),
    ],
)
def test_a_stray_entry_in_the_policy_folder_refuses_every_command_naming_it(
    scanned: Service, name: str, make: Callable[[Path], None]
) -> None:
    rows = state_rows(scanned)
    make(scanned.policy_dir / name)
    for command in (("validate",), ("plan",), ("run", "--yes")):
        result = scanned.cli(*command, timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert str(scanned.policy_dir / name) in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert scanned.deletes() == []
    assert state_rows(scanned) == rows


@pytest.mark.parametrize("name", ["legal-hold.yml", "FREEZE.YAML"])
def test_a_hold_in_a_yml_or_upper_case_file_holds(scanned: Service, name: str) -> None:
    (scanned.policy_dir / name).write_text(HOLD_ALL)
    validated = scanned.cli("validate")
    assert validated.returncode == 0, validated.stderr
    assert "1 holds" in validated.stdout
    run = scanned.cli("run", "--yes")
    assert run.returncode == 0, run.stderr
    assert scanned.deletes() == []


def overwrite_a_page(path: Path) -> None:
    """The first page of the sessions table, which every plan reads (not the file's header,
    which opening it already checks)."""
    with sqlite3.connect(path) as db:
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sessions'"
        ).fetchone()
    db.close()
    assert root > 1, "the sessions table has pages of its own"
    with path.open("r+b") as handle:
        handle.seek(page * (int(root) - 1))
        handle.write(b"\xa5" * page)


def test_a_damaged_state_database_is_one_message_for_plan_run_and_inventory(
    scanned: Service,
) -> None:
    overwrite_a_page(scanned.state_dir / "state.db")
    for command in (("plan",), ("run", "--yes"), ("inventory",)):
        result = scanned.cli(*command)
        assert result.returncode == 1, (command, result.stderr)
        clean(result)
        assert f"the state database {scanned.state_dir / 'state.db'} is damaged" in result.stderr
        assert "restore it or move it aside, the next run rescans" in result.stderr
    assert scanned.deletes() == []
    assert not [event for event in scanned.events() if event["event"] == "intent"]
    (scanned.state_dir / "state.db").rename(scanned.state_dir / "state.db.damaged")
    assert scanned.cli("plan").returncode == 0


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as handle:
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


@pytest.mark.e2e
def test_a_full_disk_during_inventory_is_one_message_and_the_state_survives(
    service: Callable[..., Service], tmpfs: Path
) -> None:
    deployed = service(*SANDBOX, RETENTION_STATE_DIR=str(tmpfs / "state"))
    assert deployed.cli("inventory").returncode == 0
    rows = state_rows(deployed)
    filler = fill(tmpfs)
    for command in (("inventory", "--full"), ("run", "--yes")):
        result = deployed.cli(*command, process=True)
        assert result.returncode == 1, (command, result.stderr)
        clean(result)
        assert "disk is full" in result.stderr, result.stderr
        assert "hint: free space" in result.stderr, result.stderr
    assert deployed.deletes() == []
    filler.unlink()
    with sqlite3.connect(deployed.state_dir / "state.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert state_rows(deployed) == rows
    assert deployed.cli("inventory").returncode == 0


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RETENTION_RATE_LIMIT": "inf"}, "RETENTION_RATE_LIMIT"),
        ({"RETENTION_PLAN_MAX_AGE_HOURS": "1e308"}, "RETENTION_PLAN_MAX_AGE_HOURS"),
    ],
)
def test_absurd_settings_exit_2_naming_the_setting(
    scanned: Service, env: dict[str, str], named: str
) -> None:
    for command in (("plan",), ("run", "--yes")):
        result = scanned.cli(*command, extra_env=env)
        assert result.returncode == 2, result.stderr
        clean(result)
        assert named in result.stderr
    assert scanned.deletes() == []


def test_a_non_utf8_settings_file_exits_2_naming_the_file(scanned: Service, tmp_path: Path) -> None:
    toml = tmp_path / "retention.toml"
    toml.write_bytes(b"# r\xe9tention\nrate_limit = 5\n")
    result = scanned.cli("run", "--yes", extra_env={"RETENTION_CONFIG": str(toml)})
    assert result.returncode == 2
    clean(result)
    assert f"{toml} is not UTF-8 text" in result.stderr
    assert scanned.deletes() == []


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
def test_an_as_of_outside_the_years_planned_for_exits_2(scanned: Service, as_of: str) -> None:
    result = scanned.cli("plan", "--as-of", as_of)
    assert result.returncode == 2
    clean(result)
    assert f"--as-of {as_of!r}" in result.stderr


def test_auth_status_reads_the_stored_token_without_a_network_call(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    stored = {
        "refresh_token": "canary-stored-refresh-7c1d",
        "obtained_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
        "principal": "admin@example.com",
    }
    (state / "refresh_token.json").write_text(json.dumps(stored))
    before = (state / "refresh_token.json").read_bytes()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")},
        "RETENTION_CONFIG": "",
        "RETENTION_STATE_DIR": str(state),
        "RETENTION_CLIENT_ID": "client",
        "RETENTION_CLIENT_SECRET": "canary-client-secret-99",
        # Nothing listens here: a network call would fail the command.
        "RETENTION_TOKEN_URL": "http://127.0.0.1:9/oauth/token",
    }
    status = invoke_retention(
        "auth",
        "status",
        env=env,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "obtained 3.0 days ago" in status.stdout
    assert "belongs to: admin@example.com" in status.stdout
    assert "canary" not in status.stdout + status.stderr
    assert (state / "refresh_token.json").read_bytes() == before
    checked = invoke_retention(
        "auth",
        "status",
        "--check",
        env=env,
        timeout=120,
    )
    assert checked.returncode == 1, checked.stderr
    assert "Traceback" not in checked.stderr


def test_debug_tracebacks_are_masked_like_log_lines() -> None:
    secret = "canary-debug-refresh-4f9a0b"
    register_secret(secret)

    @click.group(cls=RetentionGroup)
    @click.option("--debug", is_flag=True)
    @click.pass_context
    def group(ctx: click.Context, debug: bool) -> None:
        ctx.ensure_object(dict)
        ctx.obj["debug"] = debug

    @group.command()
    def echo() -> None:
        raise RuntimeError(f"token endpoint said: refresh_token={secret}&grant_type=x")

    result = CliRunner().invoke(group, ["--debug", "echo"])
    assert result.exit_code == 1
    assert "Traceback" in result.output
    assert "RuntimeError" in result.output
    assert secret not in result.output


@pytest.mark.parametrize("unit", ["retention.service", "retention-run.service"])
def test_units_cap_memory(unit: str) -> None:
    lines = (DEPLOY / unit).read_text().splitlines()
    assert "MemoryMax=2G" in lines


def test_a_failure_inside_a_task_group_is_reported_as_the_one_it_wraps(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "state.db-wal"))
    group = ExceptionGroup("scan", [ExceptionGroup("workers", [full, full])])
    failure = known_failure(group, tmp_path)
    assert failure is not None
    assert failure.exit_code == 1
    assert (
        failure.message
        == f"the disk is full writing {tmp_path / 'state.db-wal'} (No space left on device)"
    )
    assert known_failure(ExceptionGroup("bug", [KeyError("x")]), tmp_path) is None
