"""The README's folder table names every module of the package, in its folder's row."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^\| (`retention/[^|]*) \| (.*) \|$", re.M)


def rows() -> dict[str, str]:
    """Each row of the table by the folder (or top-level files) its first cell names."""
    found = {}
    for first, text in ROW.findall((REPO / "README.md").read_text()):
        folder = re.match(r"`(retention/[^`]*)`", first)
        assert folder is not None
        name = folder.group(1)
        key = name if name.endswith("/") else "retention/"
        found[key] = first + " " + text
    return found


def test_every_module_is_named_in_its_folders_row() -> None:
    table = rows()
    missing = []
    for path in sorted((REPO / "retention").rglob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        folder = path.parent.relative_to(REPO).as_posix() + "/"
        row = table.get(folder)
        if row is None and folder.count("/") > 2:  # a folder inside a folder: its parent's row
            row = table.get("/".join(folder.split("/")[:2]) + "/")
        if row is None or (f"`{path.name}`" not in row and f"`{folder}{path.name}`" not in row):
            missing.append(path.relative_to(REPO).as_posix())
    assert missing == []
