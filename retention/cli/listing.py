"""The names a hold may use, read from the last inventory without a scan: list and resolve them."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from retention.cli.tables import FitTable, console_for, say
from retention.errors import InvalidInput
from retention.service.statedir import reader
from retention.times import parse_stored_time
from retention.units import format_age

_NO_INVENTORY_HINT = "run `retention inventory` first"
_QUERIES = {
    "organizers": (
        "SELECT o.organizer_key, o.email, o.group_key, COALESCE(g.name, o.group_name) AS "
        "group_name, o.status, o.seen_at FROM organizers o "
        "LEFT JOIN groups g ON g.group_key = o.group_key ORDER BY o.email, o.organizer_key"
    ),
    "groups": (
        "SELECT g.group_key, g.name, COUNT(o.organizer_key) AS organizers, g.status, g.seen_at "
        "FROM groups g LEFT JOIN organizers o ON o.group_key = g.group_key "
        "GROUP BY g.group_key ORDER BY g.name, g.group_key"
    ),
}
_COLUMNS = {
    "organizers": ("organizer_key", "email", "group_key", "group_name", "status"),
    "groups": ("group_key", "name", "organizers", "status"),
}


@dataclass(frozen=True)
class Listing:
    """The organizers or groups of the last inventory, and when the account listed them."""

    kind: str
    rows: list[dict[str, Any]]
    listed_at: datetime | None


def _read(state_db: Path, query: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    if not state_db.is_file():
        raise InvalidInput(f"there is no inventory yet ({state_db})", hint=_NO_INVENTORY_HINT)
    db = reader(state_db)
    try:
        return list(db.query(query, params))
    except sqlite3.OperationalError:
        raise InvalidInput(f"{state_db} holds no inventory yet", hint=_NO_INVENTORY_HINT) from None
    finally:
        db.close()


def read_listing(state_db: Path, kind: str) -> Listing:
    """The organizers (`kind="organizers"`) or groups of the inventory in `state_db`."""
    rows = _read(state_db, _QUERIES[kind])
    seen = [row.pop("seen_at") for row in rows]
    listed = max((parse_stored_time(text) for text in seen if text), default=None)
    return Listing(kind, rows, listed)


def _age(listed_at: datetime | None, now: datetime) -> str:
    if listed_at is None:
        return "the account listed none: run `retention inventory` to list them again"
    ago = format_age(int((now - listed_at).total_seconds()))
    return (
        f"as the account listed them at {listed_at:%Y-%m-%d %H:%M:%S} UTC, {ago} ago "
        "(`retention inventory` lists them again)"
    )


def print_listing(listing: Listing, output: str, now: datetime) -> None:
    """The listing as a table (with its age), JSON (`listed_at` in it) or CSV (age on stderr)."""
    columns = _COLUMNS[listing.kind]
    if output == "json":
        document = {
            listing.kind: listing.rows,
            "listed_at": None if listing.listed_at is None else listing.listed_at.isoformat(),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    if output == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(listing.rows)
        say(
            console_for(stderr=True),
            f"{len(listing.rows)} {listing.kind} {_age(listing.listed_at, now)}",
        )
        return
    console = console_for()
    table = FitTable(f"{len(listing.rows)} {listing.kind} a hold may name")
    for column in columns:
        number = column in ("organizer_key", "group_key", "organizers")
        table.column(column.replace("_", " "), "number" if number else "words")
    for row in listing.rows:
        table.row(*("" if row[column] is None else str(row[column]) for column in columns))
    table.print(console)
    say(console, f"{listing.kind.capitalize()} {_age(listing.listed_at, now)}")


def organizer_key(state_db: Path, text: str, *, option: str = "--organizer") -> int:
    """An organizer key as given, or the key of the organizer with this email in the inventory."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    if "@" not in value:
        raise InvalidInput(
            f"{option} {text!r} is neither an organizer key nor an email address",
            hint="`retention inventory --list organizers` shows both",
        )
    rows = _read(
        state_db,
        "SELECT organizer_key FROM organizers WHERE lower(email) = lower(?)",
        (value,),
    )
    if not rows:
        raise InvalidInput(
            f"{option} {text!r}: no organizer with this email in the last inventory",
            hint="`retention inventory --list organizers` shows the organizers; "
            "`retention inventory` lists them again",
        )
    return int(rows[0]["organizer_key"])
