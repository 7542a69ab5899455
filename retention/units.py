"""Byte counts as people read them: IEC units (KiB, MiB, ...) everywhere the service shows one."""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: int) -> str:
    """0 → '0 B', 512 → '512 B', 1536 → '1.5 KiB', 110_386_419_302 → '102.8 GiB'."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in _UNITS[1:]:
        value /= 1024
        if round(value, 1) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")
