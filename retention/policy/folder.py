"""The policy folder is read whole or not at all: every entry is a policy file or an error.

`*.yaml` and `*.yml` (any letter case) are policy files; dotfiles, `README*`, `*.md` and the
`tests/` folder of policy tests are left alone. Anything else (a directory, a FIFO, a device, a
symlink to anything but a regular file, `holds.json`, `holds.yaml.bak`) is an error naming the
path, so that a hold written under the wrong name is never quietly skipped. Files are checked
with stat before they are opened and opened without blocking, so a FIFO or /dev/zero is refused
rather than read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from retention.policy.problems import Problem

MAX_FILE_BYTES = 1024 * 1024
POLICY_SUFFIXES = (".yaml", ".yml")
TESTS_FOLDER = "tests"
_MOVE_HINT = "rename it to *.yaml if it holds policies or holds, or move it out of the folder"
_REGULAR_HINT = "a policy file must be a regular file: replace it with one, or move it out"

Fingerprint = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class FolderListing:
    """The policy files of a folder, sorted by name, and the entries it refuses."""

    files: tuple[Path, ...]
    problems: tuple[Problem, ...]


def is_policy_name(name: str) -> bool:
    """Whether a file of this name is a policy file (`.yaml` or `.yml`, any letter case)."""
    return name.lower().endswith(POLICY_SUFFIXES)


def _left_alone(name: str, is_dir: bool) -> bool:
    lowered = name.lower()
    return (
        name.startswith(".")
        or lowered.startswith("readme")
        or lowered.endswith(".md")
        or (is_dir and name == TESTS_FOLDER)
    )


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _problem(path: Path, message: str, hint: str = _MOVE_HINT) -> Problem:
    return Problem(str(path), 1, 1, message, hint)


def _entry_problem(path: Path) -> Problem | None:
    """Why this entry of the folder cannot be a policy file, or None when it is one."""
    try:
        own = os.lstat(path)
    except OSError as exc:
        return _problem(path, f"cannot read the folder entry: {exc.strerror}", "check its rights")
    if not is_policy_name(path.name):
        what = _kind(own.st_mode) if not stat.S_ISREG(own.st_mode) else "a file"
        return _problem(path, f"{what} in the policy folder that is not *.yaml or *.yml")
    if stat.S_ISLNK(own.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            return _problem(path, "symlink to nothing (its target does not exist)", _REGULAR_HINT)
        if not stat.S_ISREG(target.st_mode):
            message = f"symlink to {_kind(target.st_mode)}, not to a regular file"
            return _problem(path, message, _REGULAR_HINT)
        return None
    if not stat.S_ISREG(own.st_mode):
        message = f"named like a policy file but is {_kind(own.st_mode)}"
        return _problem(path, message, _REGULAR_HINT)
    return None


def list_folder(folder: Path) -> FolderListing:
    """Every entry of `folder`: the policy files to load and the entries that are errors."""
    files: list[Path] = []
    problems: list[Problem] = []
    for path in _entries(folder):
        problem = _entry_problem(path)
        if problem is None:
            files.append(path)
        else:
            problems.append(problem)
    return FolderListing(tuple(files), tuple(problems))


def _entries(folder: Path) -> list[Path]:
    """The folder's entries the rule applies to (what it leaves alone is not listed)."""
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not _left_alone(entry.name, entry.is_dir(follow_symlinks=False)):
            found.append(Path(folder) / entry.name)
    return found


def folder_fingerprint(folder: Path) -> Fingerprint:
    """What changes when any entry the loader looks at changes (a new stray file included)."""
    marks = []
    try:
        entries = _entries(folder)
    except OSError:
        return ()
    for path in entries:
        try:
            seen = os.stat(path)
        except OSError:
            marks.append((path.name, 0, 0, 0))
        else:
            marks.append((path.name, seen.st_mode, seen.st_mtime_ns, seen.st_size))
    return tuple(marks)


def read_policy_bytes(path: Path) -> tuple[bytes | None, Problem | None]:
    """The file's bytes, or why it is refused: not a regular file, over 1 MiB, unreadable."""
    try:
        seen = os.stat(path)
    except OSError as exc:
        return None, _problem(path, f"cannot read the file: {exc.strerror}", "check the path")
    if not stat.S_ISREG(seen.st_mode):
        return None, _problem(path, f"{_kind(seen.st_mode)}, not a policy file", _REGULAR_HINT)
    if seen.st_size > MAX_FILE_BYTES:
        message = f"file is {seen.st_size} bytes, over the {MAX_FILE_BYTES} byte limit"
        return None, _problem(path, message, "split it into several files")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        return None, _problem(path, f"cannot open the file: {exc.strerror}", "check its rights")
    try:
        # Checked again on what was opened: the entry may have been swapped since the stat.
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, _problem(path, "changed into something other than a regular file")
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return None, _problem(path, f"cannot read the file: {exc.strerror}", "check its rights")
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        message = f"file grew over the {MAX_FILE_BYTES} byte limit while being read"
        return None, _problem(path, message, "split it into several files")
    return raw, None


def expand_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Problem]]:
    """Files to load (each file as given, each folder's policy files) and the entries refused."""
    if not paths:
        return [], [Problem(".", 1, 1, "no policy path given", "name a file or folder")]
    files: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            problems.append(_problem(path, "no such file or folder", "check the path"))
            continue
        if not stat.S_ISDIR(mode):
            files.append(path)
            continue
        try:
            listing = list_folder(path)
        except OSError as exc:
            problems.append(_problem(path, f"cannot list the folder: {exc.strerror}", "check it"))
            continue
        problems.extend(listing.problems)
        if not listing.files and not listing.problems:
            problems.append(
                _problem(path, "folder holds no *.yaml or *.yml file", "add policy files")
            )
        files.extend(listing.files)
    return files, problems
