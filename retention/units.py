"""Byte counts for people: one formatter, IEC units, used by the CLI, the report and logs."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_bytes(n: int) -> str:
    """`0 B`, `512 B`, `1.5 KiB`, `102.8 GiB`: powers of 1024, one decimal above bytes."""
    if abs(n) < 1024:
        return f"{n} B"
    amount = n / 1024
    index = 0
    # Step up while the shown (rounded) figure would read 1024 or more of this unit.
    while round(abs(amount), 1) >= 1024 and index < len(_UNITS) - 1:
        amount /= 1024
        index += 1
    return f"{amount:,.1f} {_UNITS[index]}"
