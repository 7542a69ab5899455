"""The files the package ships for operators: example policies, their schema, settings, units."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent

# The commented example policy set with its tests (what `retention demo` and `init` use).
POLICIES = EXAMPLES / "policies"
# The JSON Schema the example policies name for editors (`../schema/policy.schema.json`).
SCHEMA = EXAMPLES / "schema"
# Every setting, commented, with its default.
SETTINGS = EXAMPLES / "retention.toml.example"
# The daemon, the timer alternative and their per-account templates.
SYSTEMD = EXAMPLES / "systemd"
# Where the units expect the program; `retention init` writes the running install's instead.
UNIT_PROGRAM = "/opt/retention/venv/bin/retention"


def files_under(folder: Path) -> list[Path]:
    """Every file below `folder`, as paths relative to it, sorted (a stable listing)."""
    return sorted(path.relative_to(folder) for path in folder.rglob("*") if path.is_file())
