"""Byte counts in IEC units, number and unit never split."""

from __future__ import annotations

import pytest

from retention.units import format_age, format_bytes


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),
        (110_386_419_302, "102.8 GiB"),
        (3 * 1024**4, "3.0 TiB"),
    ],
)
def test_bytes_are_shown_in_iec_units(count: int, text: str) -> None:
    assert format_bytes(count) == text


def test_number_and_unit_are_two_words() -> None:
    assert format_bytes(5 * 1024**3).split(" ") == ["5.0", "GiB"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (119, "119 s"),
        (120, "2 min"),
        (3599, "59 min"),
        (3600, "1 h 0 min"),
        (18_180, "5 h 3 min"),
        (172_799, "47 h 59 min"),
        (187_200, "2 d 4 h"),
        (-5, "0 s"),
    ],
)
def test_ages_read_in_whole_units_without_going_negative(seconds: int, text: str) -> None:
    assert format_age(seconds) == text
