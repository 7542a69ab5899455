"""Subject patterns compiled with RE2: matching takes time linear in the subject, never more."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

import re2

# A pattern RE2 refuses, with what to write instead: Python's `re` would accept these and could
# then take exponential time on a long subject.
PATTERN_HINT = (
    "patterns use RE2 syntax: no backreferences (\\1) or lookaround ((?=, (?!, (?<=, (?<!);"
    " rewrite it without them (subject_not says 'must not contain')"
)

Search = Callable[[str], bool]


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the refusal reaches the user as a problem, not on stderr
    return options


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Search:
    """Whether `pattern` is found anywhere in a subject; ValueError when RE2 cannot compile it."""
    try:
        compiled = re2.compile(pattern, _options())
    except re2.error as exc:
        reason = exc.args[0].decode() if isinstance(exc.args[0], bytes) else str(exc.args[0])
        raise ValueError(f"regular expression {pattern!r} does not compile: {reason}") from None
    search = cast(Callable[[str], object], compiled.search)
    return lambda subject: search(subject) is not None
