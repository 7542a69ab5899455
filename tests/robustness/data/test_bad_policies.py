"""Bad policies: fuzzed YAML validates or is refused at FILE:LINE, never a traceback or DELETE."""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from retention.policy import PolicyError, PolicySet, load_policy_set

from .conftest import Service

YAMLS = (".yaml", ".yml")
KEYS = (
    "name", "description", "enabled", "action", "after", "scope", "match", "schedule", "limits",
    "groups", "organizers", "exclude_organizers", "exclude_groups", "meeting_types", "subject",
    "subject_not", "has_recording", "min_attendees", "max_deletions", "max_percent", "id", "reason",
    "expires",
    "sessions", "meetings", "all", "policies", "holds", "afer", "",
)  # fmt: skip
ACTIONS = ("delete_recordings", "delete_attendees", "delete_session", "retain", "delete", "")
DURATIONS = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,12}[dwmyhs]?\Z"),
    st.sampled_from(["90d", "1y2m", "0d", "7y", "P30D", "30 d", "1e9d", "99999999999y", "d"]),
)
REGEXES = st.one_of(
    st.sampled_from(["(?i)interview", "(", "[a-", "(a+)+$", "\\", "(?P<x>", "*", "a{99999}"]),
    # Catastrophic under backtracking engines: each must compile or be refused, never hang.
    st.sampled_from(["(?i)^(\\w+\\s?)*$", "(a|aa)*b", "^(([a-z])+.)+[A-Z]([a-z])+$", "(x+x+)+y"]),
    st.text(max_size=12),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    DURATIONS,
    REGEXES,
    st.sampled_from(ACTIONS),
    st.dates().map(str),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=12,
)


@st.composite
def policy_like(draw: st.DrawFn) -> dict[str, Any]:
    """A mostly well-formed policy with a few fields bent: the inputs most likely to slip by."""
    entry: dict[str, Any] = {
        "name": draw(st.one_of(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,15}\Z"), st.text(max_size=8))),
        "description": "fuzzed",
        "action": draw(st.sampled_from(ACTIONS)),
        "after": draw(DURATIONS),
    }
    if draw(st.booleans()):
        entry["match"] = {"subject": draw(REGEXES), "min_attendees": draw(SCALARS)}
    if draw(st.booleans()):
        entry["scope"] = {"groups": draw(st.lists(SCALARS, max_size=3))}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
        entry[key] = draw(VALUES)
    return entry


def to_yaml(data: Any) -> str:
    """Block-style YAML of `data`, as a person would write it."""
    out = io.StringIO()
    writer = YAML(typ="safe")
    writer.default_flow_style = False
    writer.dump(data, out)
    return out.getvalue()


def documents() -> st.SearchStrategy[str]:
    structured = st.one_of(
        st.dictionaries(
            st.sampled_from(("policies", "holds")), st.lists(policy_like(), max_size=3)
        ),
        st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=4),
        VALUES,
    ).map(to_yaml)
    textual = st.one_of(
        st.text(max_size=200),
        st.sampled_from(
            [
                "policies: &a [*a]\n",
                "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: [*d, *d]\n",
                "policies:\n  - &p {name: a, description: d, action: retain, after: 1d}\n  - *p\n",
                "policies:\n\t- name: tab\n",
                "policies:\n  - name: a\n    name: b\n",
                "!!python/object:os.system {}\n",
                "%YAML 9.9\n---\npolicies: []\n",
                "policies: []\n---\nholds: []\n",
                "\ufeffpolicies: []\n",
                "policies: [",
                "",
            ]
        ),
    )
    return st.one_of(structured, textual)


def load_one(text: str) -> PolicySet | PolicyError:
    """Load `text` as the only file of a policy folder: a set, or the PolicyError raised."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_policy_set([Path(folder)])
        except PolicyError as exc:
            refused = exc
    assert refused.errors, "a PolicyError must carry at least one error"
    assert refused.exit_code == 2
    for problem in refused.errors:
        assert problem.path == str(path)
        assert problem.line >= 1
        assert problem.col >= 1
    return refused


def fuzzing(examples: int) -> settings:
    """Settings for `examples` fuzzed inputs: no deadline, slow and large data allowed."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzzing(100)
@given(documents())
def test_fuzzed_policy_yaml_validates_or_is_refused_with_file_line_problems(text: str) -> None:
    load_one(text)


@pytest.mark.torture
@pytest.mark.timeout(3600)
@fuzzing(5_000)
@given(documents())
def test_many_fuzzed_policy_files_validate_or_are_refused(text: str) -> None:
    load_one(text)


STRAYS = ("directory", "fifo", "to-dev-zero", "to-directory", "dangling", "regular")
NAMES = st.one_of(
    st.sampled_from(
        ["a.yaml", "b.yml", "C.YAML", "d.Yml", "holds.json", "holds.yaml.bak", "x", "README",
         "notes.md", ".hidden.yaml", "tests", "e.yaml", "readme.yaml", "NOTES.MD"]
    ),
    # Generated names are never among those left alone (a `readme.*` is sampled above).
    st.from_regex(r"\A[a-z]{1,6}\.(yaml|yml|YAML|json|txt|bak)\Z").filter(
        lambda name: not name.startswith("readme")
    ),
)  # fmt: skip
# The entries a policy folder leaves alone, named one by one: hidden ones, README and *.md that
# are not YAML, and a `tests` directory (`readme.yaml` is a policy file like any other).
LEFT_ALONE = {".hidden.yaml", "README", "notes.md", "NOTES.MD"}


def _make(path: Path, kind: str, text: str) -> None:
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "to-dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "to-directory":
        path.symlink_to(path.parent)
    elif kind == "dangling":
        path.symlink_to(path.parent / "nowhere")
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")


def _left_alone(name: str, kind: str) -> bool:
    return name in LEFT_ALONE or (name == "tests" and kind == "directory")


@pytest.mark.timeout(600)
@fuzzing(100)
@given(
    st.dictionaries(
        NAMES,
        st.tuples(st.sampled_from(STRAYS), documents()),
        min_size=1,
        max_size=6,
    )
)
def test_fuzzed_policy_folders_load_whole_or_name_every_stray_entry(
    entries: dict[str, tuple[str, str]],
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for entry, (kind, text) in entries.items():
            _make(folder / entry, kind, text)
        considered = {e: k for e, (k, _) in entries.items() if not _left_alone(e, k)}
        strays = {
            e for e, k in considered.items() if k != "regular" or not e.lower().endswith(YAMLS)
        }
        try:
            loaded = load_policy_set([folder])
        except PolicyError as exc:
            named = {Path(problem.path).name for problem in exc.errors}
            assert strays <= named, (strays, named)
            assert named <= set(considered) | {folder.name}, named
        else:
            assert not strays
            assert {source.path.name for source in loaded.files} == set(considered)


def test_huge_and_alias_bomb_files_are_refused_with_a_position() -> None:
    huge = "policies:\n" + "  # padding\n" * 200_000
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
    )
    for text in (huge, bomb):
        refused = load_one(text)
        assert isinstance(refused, PolicyError)


FILE_LINE = re.compile(r"^\S+\.yaml:\d+:\d+: ", re.MULTILINE)
INVALID_FOLDERS = [
    "policies:\n  - name: everything\n    description: d\n    action: delete_session\n"
    "    after: 1d\n    match: {subject: '('}\n",
    "policies:\n  - name: everything\n    description: d\n    action: delete_session\n"
    "    after: 1\n",
    "policies:\n  - name: everything\n    description: d\n    action: delete_session\n"
    "    after: 1d\n    afer: 2d\n",
    "policies: &a [*a]\n",
    "policies:\n  - name: everything\n    description: d\n    action: delete_session\n"
    "    after: 1d\n  - name: everything\n    description: d\n    action: retain\n    after: 1y\n",
]


def test_invalid_policy_folders_exit_2_at_file_line_and_send_no_delete(
    service: Callable[..., Service],
) -> None:
    deployed = service("--seed", "3", "--days", "60", "--sessions-per-day", "4")
    fuzzed = [
        "policies:\n  - {name: a, description: d, action: delete_session, after: 1d, x: *y}\n",
        "policies: [{name: a, description: d, action: delete_session, after: 99999999999y}]\n",
        "holds: [{id: H, reason: r, expires: 2026-02-30, all: true}]\n",
        json.dumps({"policies": [{"name": "a", "description": None, "action": 3, "after": []}]}),
    ]
    for number, text in enumerate([*INVALID_FOLDERS, *fuzzed]):
        (deployed.policy_dir / "policies.yaml").write_text(text)
        # Every command loads policies the same way; the one that deletes is tried on each.
        commands = [("run", "--yes")] + ([("validate",), ("plan",)] if number == 0 else [])
        for command in commands:
            result = deployed.cli(*command)
            assert result.returncode == 2, (text, command, result.stderr)
            assert "Traceback" not in result.stderr
            assert FILE_LINE.search(result.stderr), result.stderr
    assert deployed.deletes() == []
    assert not (deployed.state_dir / "audit.db").exists()
