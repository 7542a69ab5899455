"""`retention sandbox`: serve the GoTo Meeting API stand-in; `sandbox generate` writes one."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import uvicorn

from retention.cli.app import cli
from retention.errors import InvalidInput
from retention.sandbox import (
    Account,
    SandboxDataError,
    SandboxOptions,
    account_state,
    create_app,
    dump_account,
    generate_account,
    load_account,
)
from retention.sandbox.faults import ConnectionDropped
from retention.times import parse_user_time

# The generator's arguments (`generate_account` takes them by these names) as options:
# name, type, default, help.
_GENERATOR_OPTIONS: tuple[tuple[str, click.ParamType[int, Any], int, str], ...] = (
    ("seed", click.INT, 1, "Seed of the generated account and of the fault sequence."),
    ("organizers", click.IntRange(1), 20, "Organizers in the generated account."),
    ("groups", click.IntRange(1), 3, "Groups the organizers are spread over."),
    ("days", click.IntRange(1), 120, "Days of meeting history before --now."),
    ("sessions_per_day", click.IntRange(0), 25, "Sessions held per day across the whole account."),
)
_ACCOUNT_FILE = click.Path(path_type=Path, dir_okay=False)


def _data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options that shape a generated account, shared by serving and `generate`."""
    options = [
        click.option(
            "--" + name.replace("_", "-"), type=kind, default=default, show_default=True, help=text
        )
        for name, kind, default, text in _GENERATOR_OPTIONS
    ]
    options.append(
        click.option(
            "--now",
            "now_text",
            metavar="ISO",
            help="The account's fixed clock, e.g. 2026-11-23T00:00:00Z (default: now).",
        )
    )
    for option in reversed(options):
        command = option(command)
    return command


def _parse_now(now_text: str | None) -> datetime:
    if now_text is None:
        return datetime.now(UTC)
    return parse_user_time(now_text, option="--now")


def _generated(params: dict[str, Any]) -> Account:
    """The account the data options describe."""
    chosen = {name: params[name] for name, *_ in _GENERATOR_OPTIONS}
    return generate_account(**chosen, now=_parse_now(params["now_text"]))


def _load(path: Path) -> Account:
    try:
        return load_account(path)
    except SandboxDataError as exc:
        raise InvalidInput(
            str(exc), hint="fix the entries named above; see docs/sandbox.md for the format"
        ) from exc


class _HideDroppedConnections(logging.Filter):
    """Dropped connections are injected faults, not server errors worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted sockets inherit this; without it Nagle + delayed ACK add ~40 ms per keep-alive call
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="choose another --port, or --port 0 for a free one",
        ) from exc
    sock.listen(128)
    return sock


def _summary(base_url: str, account: Account, options: SandboxOptions) -> list[str]:
    state = account_state(account)
    clock = "real time"
    if account.now is not None:
        clock = datetime.fromtimestamp(account.now, UTC).isoformat().replace("+00:00", "Z")
    return [
        f"API base:      {base_url}/G2M/rest",
        f"token URL:     {base_url}/oauth/token  (HTTP Basic client auth)",
        f"client id:     {account.oauth.client_id}",
        f"client secret: {account.oauth.client_secret}",
        f"refresh token: {account.oauth.refresh_token}",
        f"account:       {account.account_key}, now = {clock}",
        f"holds:         {state['organizers']} organizers in {state['groups']} groups, "
        f"{state['sessions']} sessions, {state['recordings']} recordings, "
        f"{state['attendee_lists']} attendee lists",
        f"token ttl:     {options.token_ttl}s, refresh-token rotation "
        f"{'on' if options.rotate_refresh_tokens else 'off'}",
        f"control:       {base_url}/_sandbox/state · /_sandbox/requests · /_sandbox/control",
    ]


@cli.group(invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8600,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@_data_options
@click.option(
    "--data",
    type=_ACCOUNT_FILE,
    help="Serve this account file instead of a generated account.",
)
@click.option(
    "--token-ttl",
    type=click.IntRange(1),
    default=3600,
    show_default=True,
    help="Seconds an access token lives.",
)
@click.option(
    "--rotate-refresh-tokens/--no-rotate-refresh-tokens",
    default=True,
    show_default=True,
    help="Each refresh returns a new refresh token, killing the old.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="API requests per second per client; over it, 429.",
)
@click.option("--no-retry-after", is_flag=True, help="Send 429 without a Retry-After header.")
@click.option(
    "--latency-ms", type=click.FloatRange(0), default=0.0, help="Added to every response."
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of API requests answered 500/502/503 or dropped mid-response.",
)
@click.option(
    "--date-offset",
    type=float,
    default=0.0,
    metavar="SECONDS",
    help="Run the Date header this far from the real clock (negative: behind).",
)
@click.pass_context
def sandbox(ctx: click.Context, /, **params: Any) -> None:
    """Serve a GoTo Meeting API sandbox on loopback; prints its base URL first."""
    if ctx.invoked_subcommand is not None:
        return
    data: Path | None = params["data"]
    account = _load(data) if data is not None else _generated(params)
    options = SandboxOptions(
        token_ttl=params["token_ttl"],
        rotate_refresh_tokens=params["rotate_refresh_tokens"],
        rate_limit=params["rate_limit"],
        retry_after="absent" if params["no_retry_after"] else "auto",
        latency_ms=params["latency_ms"],
        fault_rate=params["fault_rate"],
        date_offset=params["date_offset"],
        seed=params["seed"],
    )
    host: str = params["host"]
    sock = _bind(host, params["port"])
    shown_host = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown_host}:{sock.getsockname()[1]}"
    click.echo(base_url)
    for line in _summary(base_url, account, options):
        click.echo(line)
    sys.stdout.flush()
    logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())
    config = uvicorn.Config(
        create_app(account, options),
        log_level="warning",
        access_log=False,
        lifespan="off",
        date_header=False,  # the gate writes Date, following --date-offset
        timeout_graceful_shutdown=2,
    )
    uvicorn.Server(config).run(sockets=[sock])


@sandbox.command("generate")
@click.option(
    "--out",
    type=_ACCOUNT_FILE,
    required=True,
    help="Where to write the account JSON.",
)
@_data_options
def generate(out: Path, **params: Any) -> None:
    """Write a generated account as JSON, in the format `--data` reads."""
    account = _generated(params)
    try:
        dump_account(account, out)
    except OSError as exc:
        raise InvalidInput(
            f"cannot write {out}: {exc.strerror}", hint="choose a writable --out path"
        ) from exc
    state = account_state(account)
    click.echo(f"wrote {out}: {state['organizers']} organizers, {state['sessions']} sessions")
