"""Problems found in policy files, each at FILE:LINE:COL, and the error that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from retention.errors import InvalidInput

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake (or, with severity "warning", one doubt) at a place in a policy file.

    `line` and `col` are 1-based, as editors show them.
    """

    path: str
    line: int
    col: int
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{self.path}:{self.line}:{self.col}: {prefix}{self.message}{hint}"

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        """Order of reading: file, then line, then column."""
        return (self.path, self.line, self.col, self.message)


class PolicyError(InvalidInput):
    """The policy set is invalid; `problems` holds every problem found, errors and warnings."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: p.sort_key))
        errors = [p for p in self.problems if p.severity == "error"]
        noun = "problem" if len(errors) == 1 else "problems"
        lines = "\n".join(str(p) for p in errors)
        super().__init__(
            f"policy files are invalid ({len(errors)} {noun}); nothing was loaded:\n{lines}",
            hint="fix each line named above, then run `retention validate` again",
        )

    @property
    def errors(self) -> tuple[Problem, ...]:
        """The problems that make the set invalid."""
        return tuple(p for p in self.problems if p.severity == "error")
