"""Loading a policy set from files: parse, validate, cross-check, all-or-nothing."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from retention import canonical
from retention.policy.folder import TESTS_FOLDER, expand_paths, read_policy_bytes
from retention.policy.models import Hold, Policy, PolicyFileModel
from retention.policy.problems import PolicyError, Problem, Severity
from retention.policy.validation import ItemChecker, longer, null_problems, pydantic_problem
from retention.policy.yamlread import ParsedYaml, YamlPath, read_yaml

ItemKind = Literal["policy", "hold"]


@dataclass(frozen=True)
class SourceFile:
    """One policy file as loaded: its path, the sha256 of its bytes, its text and positions."""

    path: Path
    sha256: str
    text: str = field(repr=False)
    parsed: ParsedYaml = field(repr=False, compare=False)


@dataclass(frozen=True)
class Location:
    """Where a policy or hold is written: its file and its path inside the document."""

    file: SourceFile
    where: YamlPath

    def problem(
        self, sub: YamlPath, message: str, hint: str | None, severity: Severity = "error"
    ) -> Problem:
        """A problem at `sub` inside this item (its key, or the item itself when absent)."""
        line, col = self.file.parsed.position((*self.where, *sub), key=True)
        return Problem(str(self.file.path), line, col, message, hint, severity)


@dataclass(frozen=True)
class PolicySet:
    """Validated policies and holds with their provenance, content hashes and digest."""

    policies: tuple[Policy, ...]
    holds: tuple[Hold, ...]
    files: tuple[SourceFile, ...]
    content_hashes: Mapping[str, str]
    digest: str
    warnings: tuple[Problem, ...]
    locations: Mapping[tuple[ItemKind, str], Location] = field(repr=False)
    skipped: tuple[tuple[Path, str], ...] = ()
    test_files: tuple[tuple[Path, int], ...] = ()  # each policy test file, its count of tests

    def counts(self, path: Path) -> tuple[int, int]:
        """How many policies and holds the file at `path` defines."""
        kinds = [kind for (kind, _), where in self.locations.items() if where.file.path == path]
        return kinds.count("policy"), kinds.count("hold")

    @property
    def enabled_policies(self) -> tuple[Policy, ...]:
        """The policies decide applies."""
        return tuple(policy for policy in self.policies if policy.enabled)

    def content_hash(self, name: str) -> str:
        """sha256 of the canonical JSON of the named policy's normalized definition."""
        return self.content_hashes[name]

    def locate(self, kind: ItemKind, name: str) -> Location:
        """Where the named policy or hold is written."""
        return self.locations[(kind, name)]


def canonical_hash(policy: Policy) -> str:
    """sha256 of the policy's normalized definition as canonical JSON (what the audit stores)."""
    # A field added later (`notice`, `scope.exclude_groups`) counts only when set: the hashes
    # of policies written before it stay what they were.
    unset: dict[str, Any] = {}
    if policy.notice is None:
        unset["notice"] = True
    if policy.scope is not None and policy.scope.exclude_groups is None:
        unset["scope"] = {"exclude_groups": True}
    return canonical.canonical_hash(
        policy.model_dump(mode="json", by_alias=True, exclude=unset or None)
    )


def load_policy_set(paths: Sequence[Path]) -> PolicySet:
    """Load and validate every file; raise PolicyError with every problem if any is an error."""
    expanded = expand_paths(paths)
    problems: list[Problem] = list(expanded.problems)
    sources: list[SourceFile] = []
    items: list[tuple[SourceFile, PolicyFileModel]] = []
    test_files = []
    for path in expanded.test_files:
        count, found = _read_test_file(path)
        problems.extend(found)
        test_files.append((path, count))
    for path in expanded.files:
        source, model, found = _load_file(path)
        problems.extend(found)
        if source is not None and model is not None:
            sources.append(source)
            items.append((source, model))
    locations, cross = _index(items)
    problems.extend(cross)
    problems.extend(_retain_warnings(items))
    if any(problem.severity == "error" for problem in problems):
        raise PolicyError(problems)
    policies = tuple(policy for _, model in items for policy in model.policies or ())
    holds = tuple(hold for _, model in items for hold in model.holds or ())
    return PolicySet(
        policies=policies,
        holds=holds,
        files=tuple(sources),
        content_hashes={policy.name: canonical_hash(policy) for policy in policies},
        digest=_digest(sources),
        warnings=tuple(sorted(problems, key=lambda p: p.sort_key)),
        locations=locations,
        skipped=tuple(expanded.skipped),
        test_files=tuple(test_files),
    )


def _digest(sources: Sequence[SourceFile]) -> str:
    """One hash over the files' names and contents, independent of the order they were given."""
    lines = sorted(f"{source.path.name}\t{source.sha256}" for source in sources)
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def _read_test_file(path: Path) -> tuple[int, list[Problem]]:
    """A policy test file's count of tests; an error when it holds policies or holds, which
    nothing would read there (or when it cannot be read to tell)."""
    raw, refused = read_policy_bytes(path)
    if raw is None:
        return 0, [] if refused is None else [refused]
    count, problems = _count_tests(str(path), raw)
    return count, list(problems)


@functools.lru_cache(maxsize=64)
def _count_tests(name: str, raw: bytes) -> tuple[int, tuple[Problem, ...]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return 0, (Problem(name, 1, 1, f"not UTF-8 text: {exc.reason}", "save as UTF-8"),)
    parsed, problems = read_yaml(text, name)
    if parsed is None:
        return 0, tuple(problems)
    data = parsed.data if isinstance(parsed.data, dict) else {}
    misplaced = [key for key in ("policies", "holds") if key in data]
    for key in misplaced:
        line, column = parsed.position((key,), key=True)
        problems.append(
            Problem(
                name,
                line,
                column,
                f"a policy test file holds `{key}`, which is never loaded from {TESTS_FOLDER}/",
                f"move the {key} to a policy file outside {TESTS_FOLDER}/; a test file holds"
                " `tests:` only",
            )
        )
    tests = data.get("tests")
    return (len(tests) if isinstance(tests, list) else 0), tuple(problems)


def _load_file(path: Path) -> tuple[SourceFile | None, PolicyFileModel | None, list[Problem]]:
    raw, refused = read_policy_bytes(path)
    if raw is None:
        return None, None, [] if refused is None else [refused]
    source, model, problems = _parse_file(str(path), raw)
    return source, model, list(problems)


# Reading a file is a function of its name and bytes: a folder read again unchanged (each run,
# each command of one process) is not parsed again. The bytes are read afresh every time.
@functools.lru_cache(maxsize=64)
def _parse_file(
    name: str, raw: bytes
) -> tuple[SourceFile | None, PolicyFileModel | None, tuple[Problem, ...]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, None, (Problem(name, 1, 1, f"not UTF-8 text: {exc.reason}", "save as UTF-8"),)
    parsed, problems = read_yaml(text, name)
    if parsed is None:
        return None, None, tuple(problems)
    source = SourceFile(Path(name), hashlib.sha256(raw).hexdigest(), text, parsed)
    data: Any = {} if parsed.data is None else parsed.data
    problems = null_problems(data, parsed, name)
    try:
        model = PolicyFileModel.model_validate(data)
    except ValidationError as exc:
        problems.extend(pydantic_problem(error, parsed, name) for error in exc.errors())
        return None, None, tuple(problems)
    if problems:
        return None, None, tuple(problems)
    checker = ItemChecker(parsed, name)
    for index, policy in enumerate(model.policies or ()):
        checker.policy(policy, ("policies", index))
    for index, hold in enumerate(model.holds or ()):
        checker.hold(hold, ("holds", index))
    if not model.policies and not model.holds:
        checker.add((), "file defines no policies and no holds", "add some", "warning")
    return source, model, tuple(checker.problems)


def _index(
    items: Sequence[tuple[SourceFile, PolicyFileModel]],
) -> tuple[dict[tuple[ItemKind, str], Location], list[Problem]]:
    """Where each policy and hold is written; names and ids given twice are errors."""
    locations: dict[tuple[ItemKind, str], Location] = {}
    problems: list[Problem] = []
    for kind, name, location in _items(items):
        first = locations.get((kind, name))
        if first is None:
            locations[(kind, name)] = location
            continue
        label = "policy name" if kind == "policy" else "hold id"
        key = ("name",) if kind == "policy" else ("id",)
        line, _ = first.file.parsed.position((*first.where, *key))
        problems.append(
            location.problem(
                key,
                f"duplicate {label} {name!r} (first defined at {first.file.path}:{line})",
                f"each {label} must be unique across all policy files: rename one",
            )
        )
    return locations, problems


def _items(
    items: Sequence[tuple[SourceFile, PolicyFileModel]],
) -> Iterator[tuple[ItemKind, str, Location]]:
    for source, model in items:
        for index, policy in enumerate(model.policies or ()):
            yield "policy", policy.name, Location(source, ("policies", index))
        for index, hold in enumerate(model.holds or ()):
            yield "hold", hold.id, Location(source, ("holds", index))


def _retain_warnings(items: Sequence[tuple[SourceFile, PolicyFileModel]]) -> list[Problem]:
    """A retain rule no longer than every delete rule's age can never block a deletion."""
    enabled = [
        (source, index, policy)
        for source, model in items
        for index, policy in enumerate(model.policies or ())
        if policy.enabled
    ]
    deletes = [policy.after for _, _, policy in enabled if policy.action != "retain"]
    if not deletes:
        return []
    problems = []
    for source, index, policy in enabled:
        if policy.action == "retain" and not any(longer(policy.after, age) for age in deletes):
            location = Location(source, ("policies", index))
            problems.append(
                location.problem(
                    ("after",),
                    f"retain rule {policy.name!r} keeps sessions for {policy.after}, no longer"
                    " than the shortest delete rule waits: it never blocks a deletion",
                    "lengthen its period, or remove it",
                    "warning",
                )
            )
    return problems
