"""Turns pydantic errors into FILE:LINE:COL problems, and checks what types cannot express."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from retention.policy.durations import Duration
from retention.policy.models import Hold, Policy, PolicyFileModel
from retention.policy.patterns import PATTERN_HINT
from retention.policy.problems import Problem, Severity
from retention.policy.yamlread import ParsedYaml, YamlPath

_REFERENCE = datetime(2000, 1, 1, tzinfo=UTC)


def describe(where: YamlPath) -> str:
    """`scope.groups[1]` for ('scope', 'groups', 1)."""
    text = ""
    for part in where:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _unwrap(annotation: Any) -> Any:
    """The model class inside `list[X] | None` or `Annotated[X, …]`, else the bare type."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return None
            annotation = options[0]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation


def allowed_keys(where: YamlPath) -> list[str]:
    """The keys the model at `where` accepts (empty when `where` is not a mapping)."""
    model: Any = PolicyFileModel
    for part in where:
        if isinstance(part, int):
            continue
        fields = {field.alias or name: field for name, field in model.model_fields.items()}
        if part not in fields:
            return []
        model = _unwrap(fields[part].annotation)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return [field.alias or name for name, field in model.model_fields.items()]


def pydantic_problem(error: ErrorDetails, parsed: ParsedYaml, path: str) -> Problem:
    """One pydantic error as a problem at the YAML position of the value (or key) at fault."""
    where: YamlPath = tuple(error["loc"])
    kind = error["type"]
    name = describe(where[2:] if where[:1] in (("policies",), ("holds",)) else where)
    if kind == "extra_forbidden":
        line, col = parsed.position(where, key=True)
        allowed = ", ".join(allowed_keys(where[:-1]))
        return Problem(path, line, col, f"unknown key {where[-1]!r}", f"allowed keys: {allowed}")
    line, col = parsed.position(where)
    if kind == "missing":
        return Problem(path, line, col, f"missing required key {where[-1]!r}", _missing_hint(where))
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        if where[-1] in _PATTERN_KEYS:
            return Problem(path, line, col, f"{name}: {message}", PATTERN_HINT)
    elif kind == "string_pattern_mismatch":
        message = f"{name}: {error['input']!r} is not a valid {where[-1]}"
        return Problem(path, line, col, message, _PATTERN_HINTS.get(str(where[-1])))
    else:
        message = error["msg"][:1].lower() + error["msg"][1:]
    return Problem(path, line, col, f"{name}: {message}", _type_hint(kind))


_PATTERN_KEYS = ("subject", "subject_not")
_PATTERN_HINTS = {
    "name": "use lowercase letters, digits and dashes, starting with a letter or digit",
    "id": "use letters, digits, dots, dashes and underscores, starting with a letter or digit",
}


def _missing_hint(where: YamlPath) -> str:
    if where[-1] == "after":
        return (
            "say when the action applies, e.g. after: 90d; a retain rule must say how long to"
            " keep (a rule that never ends is a legal hold)"
        )
    return f"add {where[-1]!r}"


def _type_hint(kind: str) -> str | None:
    return {
        "bool_type": "write true or false",
        "int_type": "write a whole number without quotes",
        "string_type": "write text (quote it if it looks like a number or a date)",
        "list_type": "write a list, e.g. [a, b] or one '- item' per line",
        "model_type": "write a mapping of keys to values",
        "literal_error": "use one of the values listed",
        "too_short": "give at least one value, or remove the key",
    }.get(kind)


def null_problems(data: Any, parsed: ParsedYaml, path: str, where: YamlPath = ()) -> list[Problem]:
    """Keys given with no value: `scope:` alone must not silently mean 'everyone'."""
    problems: list[Problem] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if value is None:
                line, col = parsed.position((*where, key), key=True)
                problems.append(
                    Problem(path, line, col, f"{key!r} has no value", "give a value or remove it")
                )
            else:
                problems.extend(null_problems(value, parsed, path, (*where, key)))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            problems.extend(null_problems(item, parsed, path, (*where, index)))
    return problems


def longer(first: Duration, second: Duration) -> bool:
    """Whether `first` is strictly longer than `second` (measured from one reference date)."""
    return _REFERENCE + first.delta > _REFERENCE + second.delta


class ItemChecker:
    """Checks of one policy or hold that need more than one field, at their exact position."""

    def __init__(self, parsed: ParsedYaml, path: str) -> None:
        self.parsed = parsed
        self.path = path
        self.problems: list[Problem] = []

    def add(
        self,
        where: YamlPath,
        message: str,
        hint: str | None,
        severity: Severity = "error",
        *,
        key: bool = True,
    ) -> None:
        line, col = self.parsed.position(where, key=key)
        self.problems.append(Problem(self.path, line, col, message, hint, severity))

    def policy(self, policy: Policy, where: YamlPath) -> None:
        if not policy.enabled:
            self.add(
                (*where, "enabled"),
                f"policy {policy.name!r} is disabled: it is ignored",
                "set enabled: true (or remove the key) to apply it",
                "warning",
            )
        if policy.action == "retain":
            for key in ("schedule", "limits", "notice"):
                if getattr(policy, key) is not None:
                    self.add(
                        (*where, key),
                        f"{key!r} has no meaning on a retain rule: it deletes nothing",
                        f"remove {key!r}",
                    )
        match = policy.match
        if policy.action == "delete_recordings" and match and match.has_recording is False:
            self.add(
                (*where, "match", "has_recording"),
                f"policy {policy.name!r} deletes recordings of sessions without a recording:"
                " it can never do anything",
                "remove has_recording: false",
            )

    def hold(self, hold: Hold, where: YamlPath) -> None:
        selects = hold.has_filter or hold.meetings is not None or hold.sessions is not None
        if not hold.all_sessions and not selects:
            self.add(
                where,
                f"hold {hold.id!r} covers nothing",
                "say what it covers (scope, meetings, sessions, subject, started_between),"
                " or all: true to freeze the whole account",
                key=False,
            )
        if hold.all_sessions and selects:
            self.add(
                (*where, "all"),
                f"hold {hold.id!r} has all: true and also selectors",
                "all: true already covers every session: remove the selectors or all: true",
            )
        dates = hold.started_between
        if dates is not None and dates[0] > dates[1]:
            self.add(
                (*where, "started_between"),
                f"started_between is reversed: {dates[0]} is after {dates[1]}",
                "write [first, last] with the earlier date first",
                key=False,
            )
