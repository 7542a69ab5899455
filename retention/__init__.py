"""goto-retention: retention policies, legal holds and audited removals for GoTo Meeting."""

__version__ = "0.1.0"
