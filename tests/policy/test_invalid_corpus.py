"""Every file in tests/policy/invalid/ is refused by the real CLI with its exact message.

Each case carries its expectation on its first line: `# expect: LINE:COL: message (hint: …)`,
where FILE stands for the file's own path and DIR for its folder (for cross-file cases).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import invoke_retention

CORPUS = Path(__file__).parent / "invalid"
CASES = sorted(path.name for path in CORPUS.iterdir() if not path.name.startswith("."))


def expectations(case: str) -> list[str]:
    files = sorted((CORPUS / case).glob("*.yaml")) if (CORPUS / case).is_dir() else [CORPUS / case]
    found = []
    for path in files:
        first = path.read_text(encoding="utf-8").splitlines()[0]
        if first.startswith("# expect: "):
            name = str(path.relative_to(CORPUS))
            text = first.removeprefix("# expect: ").replace("FILE", name).replace("DIR", case)
            found.append(f"{name}:{text}")
    return found


def test_corpus_has_at_least_twenty_cases_each_with_an_expectation() -> None:
    assert len(CASES) >= 20
    assert all(expectations(case) for case in CASES)


@pytest.mark.parametrize("case", CASES)
def test_validate_refuses_invalid_file_with_its_exact_message(case: str) -> None:
    result = invoke_retention(
        "validate",
        case,
        cwd=CORPUS,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for expected in expectations(case):
        assert expected in lines, result.stderr
    assert lines[-2].startswith("error: policy files are invalid")
    assert result.stdout == ""
