"""Safe YAML reading that keeps the line and column of every value and refuses tricks.

Only the plain YAML 1.2 types are accepted (no custom or Python tags, no merge keys), duplicate
keys are refused, aliases are limited in number, and their expansion is bounded by a budget of
values so that an alias bomb is refused instead of exhausting memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from retention.policy.problems import Problem

YamlPath = tuple[str | int, ...]
Position = tuple[int, int]

MAX_DEPTH = 64
MAX_NODES = 50_000
MAX_ALIASES = 100

_STANDARD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_STANDARD}{name}" for name in ("str", "int", "float", "bool", "null")}
_TIMESTAMP_TAG = f"{_STANDARD}timestamp"
_ALIAS_HINT = "write the values out instead of repeating anchors and aliases"
_MAP_TAG = f"{_STANDARD}map"
_SEQ_TAG = f"{_STANDARD}seq"


class _Refused(Exception):
    """Stops the walk: the document cannot be read safely any further."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass
class ParsedYaml:
    """A document as plain Python data, with the 1-based position of each value and key."""

    data: Any
    values: dict[YamlPath, Position] = field(default_factory=dict)
    keys: dict[YamlPath, Position] = field(default_factory=dict)

    def position(self, path: YamlPath, *, key: bool = False) -> Position:
        """Where `path` is, or where its nearest existing parent is when it is absent."""
        table = self.keys if key else self.values
        for end in range(len(path), -1, -1):
            found = table.get(path[:end]) or self.values.get(path[:end])
            if found is not None:
                return found
        return (1, 1)


def tab_problems(text: str, path: str) -> list[Problem]:
    """Tabs in indentation: YAML forbids them, and the parser's own message is obscure."""
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            problems.append(
                Problem(
                    path,
                    number,
                    indent.index("\t") + 1,
                    "tab character in indentation",
                    "indent with spaces only; YAML does not allow tabs there",
                )
            )
    return problems


def read_yaml(text: str, path: str) -> tuple[ParsedYaml | None, list[Problem]]:
    """Parse one document; on any problem return None and every problem found."""
    tabs = tab_problems(text, path)
    if tabs:
        return None, tabs
    yaml = YAML(typ="safe", pure=True)
    try:
        # Events first: the parser does not recurse, the composer does, so a deeply nested
        # document is refused here before it can exhaust Python's recursion.
        shape = _shape_problems(yaml, text, path)
        if shape:
            return None, shape
        root = yaml.compose(text)
    except MarkedYAMLError as exc:
        return None, [_syntax_problem(exc, path)]
    except YAMLError as exc:
        return None, [Problem(path, 1, 1, f"invalid YAML: {exc}", "check the file's syntax")]
    if root is None:
        return ParsedYaml(data=None), []
    walker = _Walker(yaml, path)
    try:
        data = walker.build(root, ())
    except _Refused as exc:
        return None, [exc.problem]
    if walker.problems:
        return None, walker.problems
    return ParsedYaml(data, walker.values, walker.keys), []


def _shape_problems(yaml: YAML, text: str, path: str) -> list[Problem]:
    """Too many aliases, or collections nested deeper than MAX_DEPTH, found in the events."""
    aliases = 0
    depth = 0
    for event in yaml.parse(text):
        mark = event.start_mark
        if isinstance(event, AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                message = f"more than {MAX_ALIASES} aliases"
                return [Problem(path, mark.line + 1, mark.column + 1, message, _ALIAS_HINT)]
        elif isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                message = f"values nested more than {MAX_DEPTH} levels deep"
                return [Problem(path, mark.line + 1, mark.column + 1, message, "flatten it")]
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
    return []


def _syntax_problem(exc: MarkedYAMLError, path: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    what = " ".join(part for part in (exc.context, exc.problem) if part)
    return Problem(
        path,
        line,
        col,
        f"invalid YAML: {what}",
        "check indentation, colons and quotes on this line and the one above",
    )


def _position(node: Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Walker:
    """Turns a composed node graph into data, checking tags, keys and the alias budget."""

    def __init__(self, yaml: YAML, path: str) -> None:
        self.constructor = yaml.constructor
        self.path = path
        self.values: dict[YamlPath, Position] = {}
        self.keys: dict[YamlPath, Position] = {}
        self.problems: list[Problem] = []
        self.nodes = 0
        self.open: set[int] = set()

    def refuse(self, node: Node, message: str, hint: str) -> _Refused:
        line, col = _position(node)
        return _Refused(Problem(self.path, line, col, message, hint))

    def build(self, node: Node, where: YamlPath) -> Any:
        self.count(node)
        self.values.setdefault(where, _position(node))
        if isinstance(node, MappingNode | SequenceNode):
            return self.build_collection(node, where)
        if isinstance(node, ScalarNode) and node.tag in _SCALAR_TAGS | {_TIMESTAMP_TAG}:
            return self.build_scalar(node)
        raise self.refuse_tag(node)

    def build_collection(self, node: MappingNode | SequenceNode, where: YamlPath) -> Any:
        """A mapping or a list; refuses one that contains itself through an alias (building it
        would never end: Python's recursion would run out)."""
        if id(node) in self.open:
            raise self.refuse(node, "an alias refers to a value that contains it", _ALIAS_HINT)
        self.open.add(id(node))
        try:
            if isinstance(node, MappingNode) and node.tag == _MAP_TAG:
                return self.build_mapping(node, where)
            if isinstance(node, SequenceNode) and node.tag == _SEQ_TAG:
                return [self.build(item, (*where, index)) for index, item in enumerate(node.value)]
        finally:
            self.open.discard(id(node))
        raise self.refuse_tag(node)

    def refuse_tag(self, node: Node) -> _Refused:
        written = str(node.tag).replace(_STANDARD, "!!", 1)
        return self.refuse(
            node,
            f"YAML tag {written!r} is not allowed",
            "policy files use plain YAML values only: remove the tag",
        )

    def count(self, node: Node) -> None:
        """Every value is counted each time an alias repeats it: the expanded size is bounded."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.refuse(
                node, f"document expands to more than {MAX_NODES} values (alias bomb?)", _ALIAS_HINT
            )

    def build_mapping(self, node: MappingNode, where: YamlPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == f"{_STANDARD}merge":
                raise self.refuse(
                    key_node,
                    "merge keys (<<) and complex keys are not allowed",
                    "write every key out as a plain name",
                )
            key = str(key_node.value)
            if key in result:
                first_line, _ = self.keys[(*where, key)]
                line, col = _position(key_node)
                self.problems.append(
                    Problem(
                        self.path,
                        line,
                        col,
                        f"duplicate key {key!r} (first given on line {first_line})",
                        "give each key once; YAML would silently keep only the last value",
                    )
                )
                continue
            self.keys[(*where, key)] = _position(key_node)
            result[key] = self.build(value_node, (*where, key))
        return result

    def build_scalar(self, node: ScalarNode) -> Any:
        try:
            return self.constructor.construct_object(node, deep=True)
        except (YAMLError, ValueError, OverflowError) as exc:
            raise self.refuse(
                node, f"cannot read value {node.value!r}: {exc}", "quote it to make it text"
            ) from None
