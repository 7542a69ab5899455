"""The audit record: append-only hash-chained log, verification, export and report."""

from retention.audit.checkpoint import (
    Checkpoint,
    generate_key_pair,
    load_public_key,
    load_signing_key,
)
from retention.audit.log import AuditLog, Head, Intent, Outcome, SubjectMode
from retention.audit.store import AuditError, AuditInputError, canonical_json, row_hash
from retention.audit.verify import Finding, VerifyReport, verify_log

__all__ = [
    "AuditError",
    "AuditInputError",
    "AuditLog",
    "Checkpoint",
    "Finding",
    "Head",
    "Intent",
    "Outcome",
    "SubjectMode",
    "VerifyReport",
    "canonical_json",
    "generate_key_pair",
    "load_public_key",
    "load_signing_key",
    "row_hash",
    "verify_log",
]
