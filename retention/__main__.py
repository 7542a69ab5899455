"""Allows `python -m retention`."""

from retention.cli import main

main()
