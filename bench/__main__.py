"""Runs every benchmark script in bench/ (`make bench`), each printing its own figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    """Import each `bench/bench_*.py` module and call its `main()`, or only those named."""
    here = Path(__file__).parent
    sys.path.insert(0, str(here.parent))
    wanted = set(sys.argv[1:])
    for info in sorted(pkgutil.iter_modules([str(here)]), key=lambda m: m.name):
        if not info.name.startswith("bench_") or (wanted and info.name not in wanted):
            continue
        print(f"== {info.name}", flush=True)
        module = importlib.import_module(f"bench.{info.name}")
        module.main()


main()
