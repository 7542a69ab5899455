"""Byte counts (IEC units: KiB, MiB, ...) and ages as people read them, wherever one is shown."""

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


def format_age(seconds: int) -> str:
    """45 → '45 s', 750 → '12 min', 18_180 → '5 h 3 min', 187_200 → '2 d 4 h'."""
    seconds = max(0, seconds)
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 120:
        return f"{seconds} s"
    if hours < 1:
        return f"{minutes} min"
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"
