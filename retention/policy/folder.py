"""The policy folder is read whole or not at all: every entry is a policy file or an error.

`*.yaml` and `*.yml` (any letter case) are policy files, whatever the rest of their name
(`README-legal-hold.yaml` included). Dotfiles (editors' files) and text that is not YAML
(`README`, `*.md`) are skipped, and listed as skipped. The `tests/` folder holds policy tests,
read apart (`policy/load.py` refuses one that holds policies or holds). Anything else (a
directory, a FIFO, a device, a symlink to anything but a regular file, `holds.json`,
`holds.yaml.bak`) is an error naming the path, so that a hold written under the wrong name is
never quietly skipped. Files are checked with stat before they are opened and opened without
blocking, so a FIFO or /dev/zero is refused rather than read.
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


Skipped = tuple[tuple[Path, str], ...]  # (path, why it was not read)


@dataclass(frozen=True)
class FolderListing:
    """The policy files of a folder, sorted by name, the entries it refuses and those it skips."""

    files: tuple[Path, ...]
    problems: tuple[Problem, ...]
    skipped: Skipped = ()


@dataclass(frozen=True)
class Expanded:
    """What the paths given hold: policy files, the entries refused and skipped, test files."""

    files: list[Path]
    problems: list[Problem]
    skipped: list[tuple[Path, str]]
    test_files: list[Path]


def is_policy_name(name: str) -> bool:
    """Whether a file of this name is a policy file (`.yaml` or `.yml`, any letter case)."""
    return name.lower().endswith(POLICY_SUFFIXES)


def skip_reason(name: str) -> str | None:
    """Why an entry of this name is not read at all (a dotfile, text that is not YAML)."""
    if name.startswith("."):
        return "a dotfile"
    lowered = name.lower()
    if not is_policy_name(name) and (lowered.startswith("readme") or lowered.endswith(".md")):
        return "text, not YAML"
    return None


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
    """Every entry of `folder`: the policy files to load, the entries that are errors, and
    those skipped (the `tests/` folder is none of these: it is read apart)."""
    files: list[Path] = []
    problems: list[Problem] = []
    entries, skipped = _entries(folder)
    for path in entries:
        problem = _entry_problem(path)
        if problem is None:
            files.append(path)
        else:
            problems.append(problem)
    return FolderListing(tuple(files), tuple(problems), tuple(skipped))


def _entries(folder: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The folder's entries the rule applies to, and those skipped with why."""
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(folder) / entry.name
        if entry.name == TESTS_FOLDER and entry.is_dir(follow_symlinks=False):
            continue
        reason = skip_reason(entry.name)
        if reason is None:
            found.append(path)
        else:
            skipped.append((path, reason))
    return found, skipped


def folder_fingerprint(folder: Path) -> Fingerprint:
    """What changes when any entry the loader looks at changes (a new stray file included,
    and the policy tests, which are read to refuse one holding policies or holds)."""
    marks = []
    try:
        entries, _skipped = _entries(folder)
        tests = Path(folder) / TESTS_FOLDER
        if tests.is_dir():
            entries += _entries(tests)[0]
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


def expand_paths(paths: Sequence[Path]) -> Expanded:
    """Files to load (each file as given, each folder's policy files), the entries refused and
    skipped, and the test files of each folder's `tests/` (to be read for what they hold)."""
    if not paths:
        nothing = Problem(".", 1, 1, "no policy path given", "name a file or folder")
        return Expanded([], [nothing], [], [])
    expanded = Expanded([], [], [], [])
    for path in paths:
        try:
            mode = os.stat(path).st_mode
        except OSError:
            expanded.problems.append(_problem(path, "no such file or folder", "check the path"))
            continue
        if not stat.S_ISDIR(mode):
            expanded.files.append(path)
            continue
        try:
            listing = list_folder(path)
        except OSError as exc:
            message = f"cannot list the folder: {exc.strerror}"
            expanded.problems.append(_problem(path, message, "check it"))
            continue
        expanded.problems.extend(listing.problems)
        if not listing.files and not listing.problems:
            expanded.problems.append(
                _problem(path, "folder holds no *.yaml or *.yml file", "add policy files")
            )
        expanded.files.extend(listing.files)
        expanded.skipped.extend(listing.skipped)
        _add_tests(expanded, path / TESTS_FOLDER)
    return expanded


def _add_tests(expanded: Expanded, tests: Path) -> None:
    """The folder's policy tests, their stray entries as errors, what they skip."""
    if not tests.is_dir() or tests.is_symlink():
        return
    try:
        listing = list_folder(tests)
    except OSError as exc:
        message = f"cannot list the folder: {exc.strerror}"
        expanded.problems.append(_problem(tests, message, "check it"))
        return
    expanded.problems.extend(listing.problems)
    expanded.skipped.extend(listing.skipped)
    expanded.test_files.extend(listing.files)
