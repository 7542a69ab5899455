"""Reading a file the user named: one that cannot be read is an error naming it and why."""

from __future__ import annotations

from pathlib import Path

from retention.errors import RetentionError


def read_bytes(
    path: Path, error: type[RetentionError], cannot: str, hint: str | None = None
) -> bytes:
    """The file's bytes; else `error`: `cannot` (e.g. "cannot read the key PATH"), the reason."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise error(f"{cannot}: {exc.strerror}", hint=hint) from None
