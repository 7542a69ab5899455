"""`retention demo`: the whole story on a generated sandbox account, one real command at a time."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from retention import examples
from retention.cli.app import cli
from retention.errors import InvalidInput, RuntimeFailure

# A year and a bit of history: every shipped policy has something to do, and the first run stays
# within the shipped caps (a real first run over years of backlog would be refused by them).
ACCOUNT = ("--seed", "42", "--organizers", "40", "--groups", "7", "--days", "400")
SESSIONS_PER_DAY = "10"
RATE_LIMIT = "250"


class Demo:
    """Runs each step as the user would type it, against one sandbox and one state directory."""

    def __init__(self, workdir: Path, policies: Path, base_url: str) -> None:
        self.workdir = workdir
        scan_start = (datetime.now(UTC) - timedelta(days=430)).date().isoformat()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RETENTION_")},
            "RETENTION_API_BASE_URL": f"{base_url}/G2M/rest",
            "RETENTION_TOKEN_URL": f"{base_url}/oauth/token",
            "RETENTION_CLIENT_ID": "sandbox-client",
            "RETENTION_CLIENT_SECRET": "sandbox-secret",
            "RETENTION_REFRESH_TOKEN": "sandbox-refresh",
            "RETENTION_STATE_DIR": str(workdir / "state"),
            "RETENTION_POLICY_DIR": str(policies),
            "RETENTION_RATE_LIMIT": RATE_LIMIT,
            "RETENTION_CONCURRENCY": "16",
            "RETENTION_SCAN_START": scan_start,
            "RETENTION_NOTICE_CONTACT": "compliance@example.com",
        }

    def step(self, title: str, *args: str, expect: int = 0) -> None:
        click.secho(f"\n== {title}", bold=True)
        click.secho("$ retention " + shlex.join(args), fg="cyan")
        started = time.monotonic()
        result = subprocess.run(  # noqa: S603 - our own CLI, arguments built here
            [sys.executable, "-m", "retention", *args],
            env=self.env,
            check=False,
            stderr=subprocess.PIPE,
            text=True,
        )
        shown = [line for line in result.stderr.splitlines() if not line.startswith("{")]
        if shown:
            click.echo("\n".join(shown), err=True)
        if result.returncode != expect:
            raise RuntimeFailure(
                f"demo step `retention {' '.join(args)}` exited {result.returncode}",
                hint="run the step by hand with --debug to see why",
            )
        click.secho(f"({time.monotonic() - started:.1f} s)", dim=True)


def _start_sandbox(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    log = (workdir / "sandbox.log").open("w")
    proc = subprocess.Popen(  # noqa: S603 - our own CLI
        [
            sys.executable,
            "-m",
            "retention",
            "sandbox",
            "--port",
            "0",
            *ACCOUNT,
            "--sessions-per-day",
            SESSIONS_PER_DAY,
            "--rate-limit",
            RATE_LIMIT,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        raise RuntimeFailure(f"the sandbox did not start; see {workdir / 'sandbox.log'}")
    summary = [proc.stdout.readline().rstrip() for _ in range(8)]
    click.echo("\n".join(line for line in summary if line))
    return proc, base_url


def demo_policies(given: Path | None, local: Path) -> Path:
    """The folder given, else `local` when it is a folder, else the shipped examples."""
    if given is None:
        return local if local.is_dir() else examples.POLICIES
    if not given.is_dir():
        raise InvalidInput(
            f"policy folder {given} not found",
            hint="name a folder of policy files, or leave --policies out for the shipped examples",
        )
    return given


def _kept_session(plan_file: Path) -> str:
    """A session the plan keeps (held first), else one it removes: the one to explain."""
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    kept = sorted(plan["blocked"], key=lambda entry: not str(entry["by"]).startswith("hold:"))
    return str((kept or plan["items"])[0]["sessionId"])


@cli.command("demo")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("demo-state"),
    show_default=True,
    help="Where the demo keeps its state, plan and report (emptied first).",
)
@click.option(
    "--policies",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The policy folder to demonstrate  [default: ./policies, else the shipped examples]",
)
def demo(workdir: Path, policies: Path | None) -> None:
    """Generate a sandbox account, then validate, test, plan, explain, apply, verify and report."""
    policies = demo_policies(policies, Path("policies"))
    if (workdir / "state").exists():
        for path in sorted((workdir / "state").rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    workdir.mkdir(parents=True, exist_ok=True)
    click.secho("== 0. A sandbox GoTo Meeting account on loopback", bold=True)
    proc, base_url = _start_sandbox(workdir)
    try:
        run = Demo(workdir, policies.resolve(), base_url)
        plan_file = workdir / "plan.json"
        report = workdir / "report.html"
        run.step("1. Check the shipped policies", "validate", str(policies))
        run.step("2. Run the policies' own tests", "test", str(policies))
        run.step("3. Scan the account into the inventory", "inventory")
        run.step("4. Preview what the policies would remove", "plan", "--out", str(plan_file))
        run.step("5. Why one session is kept", "explain", _kept_session(plan_file))
        run.step("6. Apply the reviewed plan", "apply", str(plan_file), "--yes")
        run.step("7. Verify the audit record", "audit", "verify")
        run.step("8. The most recent removals", "audit", "show", "--limit", "8")
        run.step("9. The compliance report", "audit", "report", "--out", str(report))
        run.step("10. A second run finds nothing more to do", "run", "--yes")
        run.step(
            "11. The notice an organizer gets a week before their sessions go",
            "notify",
            "preview",
            "--days",
            "7",
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    click.secho("\nWhat to try next", bold=True)
    click.echo(
        f"  open {report} in a browser (it works offline and prints well)\n"
        f"  retention plan --as-of {(datetime.now(UTC) + timedelta(days=30)).date()}"
        "   # what goes next month\n"
        "  retention audit export --format csv > audit.csv   # for a spreadsheet\n"
        "  retention init site, edit site/policies/holds.yaml, retention validate site/policies"
        "\n     # a mistake shows as FILE:LINE:COL: message\n"
        f"  (state and plan are in {workdir}/; set the RETENTION_* variables printed by\n"
        "   `retention sandbox` to run commands against your own sandbox)"
    )
