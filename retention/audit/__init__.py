"""The audit record: append-only hash-chained log, verification, export and report."""
