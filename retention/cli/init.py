"""`retention init DIR`: the shipped settings, policies, schema and systemd units, to install."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from retention import examples
from retention.cli.app import cli
from retention.errors import InvalidInput

DOCS = "https://github.com/goto-retention/goto-retention/blob/main/docs/deploy.md"
# Where the units read settings and policies (their Environment= lines).
ETC = Path("/etc/retention")


@dataclass(frozen=True)
class Written:
    """One file `init` writes: where, and its bytes."""

    path: Path
    content: bytes


def installed_program() -> str:
    """The command that runs this install's `retention`, as a unit's ExecStart= names it."""
    # The venv's own script first: it runs this interpreter, with what it has installed.
    beside = Path(sys.executable).absolute().parent / "retention"
    invoked = Path(sys.argv[0]).absolute()
    for program in (beside, invoked):
        if program.name == "retention" and program.is_file() and os.access(program, os.X_OK):
            return unit_word(str(program))
    return f"{unit_word(str(Path(sys.executable).absolute()))} -m retention"


def unit_word(word: str) -> str:
    """`word` as one word of a unit's command line: systemd's specifiers and quoting escaped."""
    escaped = word.replace("%", "%%").replace("$", "$$")
    if all(char.isalnum() or char in "/-_.+@:,%$" for char in escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _copies(source: Path, into: Path) -> Iterator[Written]:
    for relative in examples.files_under(source):
        yield Written(into / relative, (source / relative).read_bytes())


def planned(directory: Path, program: str) -> tuple[list[Path], list[Written]]:
    """The targets `init` owns (the settings file and three folders) and every file it writes."""
    targets = [directory / name for name in ("retention.toml", "policies", "schema", "systemd")]
    files = [
        Written(targets[0], examples.SETTINGS.read_bytes()),
        *_copies(examples.POLICIES, targets[1]),
        *_copies(examples.SCHEMA, targets[2]),
    ]
    for unit in examples.files_under(examples.SYSTEMD):
        text = (examples.SYSTEMD / unit).read_text(encoding="utf-8")
        text = text.replace(f"ExecStart={examples.UNIT_PROGRAM} ", f"ExecStart={program} ")
        files.append(Written(targets[3] / unit, text.encode("utf-8")))
    return targets, files


def _taken(target: Path) -> bool:
    """A target is taken when it exists, unless it is an empty folder."""
    if target.is_dir() and not target.is_symlink():
        return any(target.iterdir())
    return os.path.lexists(target)


def _write_all(files: list[Written]) -> None:
    """Write every file, never over one that exists; on a failure, remove what was written."""
    done: list[Path] = []
    try:
        for item in files:
            item.path.parent.mkdir(parents=True, exist_ok=True)
            with item.path.open("xb") as out:
                done.append(item.path)
                out.write(item.content)
    except OSError:
        for path in reversed(done):
            path.unlink(missing_ok=True)
        raise


def next_steps(directory: Path) -> str:
    """The commands that install what `init` wrote, for a root shell to copy."""
    here = directory.absolute()
    units = " ".join(shlex.quote(str(here / "systemd" / unit.name)) for unit in _units())
    return "\n".join(
        [
            "Install them (the units read /etc/retention):",
            f"  sudo install -d -m 0755 {ETC} {ETC}/policies {ETC}/schema",
            f"  sudo install -m 0644 {shlex.quote(str(here / 'retention.toml'))} {ETC}/"
            "retention.toml   # then edit: at least client_id",
            f"  sudo cp -r {shlex.quote(str(here / 'policies'))}/. {ETC}/policies/",
            f"  sudo cp -r {shlex.quote(str(here / 'schema'))}/. {ETC}/schema/",
            f"  sudo install -m 0644 {units} /etc/systemd/system/",
            f"  # the secrets as encrypted credentials: {DOCS}#3-credentials",
            "  sudo systemctl daemon-reload",
            "  sudo systemctl enable --now retention.service   # the daemon, or else the timer:",
            "  # sudo systemctl enable --now retention-run.timer",
        ]
    )


def _units() -> list[Path]:
    return [unit for unit in examples.files_under(examples.SYSTEMD) if "@" not in unit.name]


@cli.command("init")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def init_command(directory: Path) -> None:
    """Write the settings example, the example policies with their tests, their JSON Schema
    and the systemd units (run by this install's `retention`) into DIRECTORY.

    Nothing is written if any of DIRECTORY/retention.toml, policies/, schema/ or systemd/
    exists (an empty folder excepted).
    """
    program = installed_program()
    targets, files = planned(directory, program)
    taken = [target for target in targets if _taken(target)]
    if taken:
        raise InvalidInput(
            "nothing written, these exist already: " + ", ".join(map(str, taken)),
            hint="name a new or empty folder, or move those away first",
        )
    _write_all(files)
    policies = [f for f in files if f.path.parent == targets[1] and f.path.suffix == ".yaml"]
    click.echo(
        f"wrote {targets[0]}, {targets[1]}/ ({len(policies)} policy files and their tests), "
        f"{targets[2]}/, {targets[3]}/ (units running {program})\n"
    )
    click.echo(next_steps(directory))
