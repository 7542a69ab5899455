"""The audit record: append-only hash-chained log, verification, export and report."""

from retention.audit.checkpoint import (
    Checkpoint,
    generate_key_pair,
    load_public_key,
    load_signing_key,
)
from retention.audit.head import WrittenHead, last_head, record_head
from retention.audit.keys import KeyRing, load_keyring, trusted_key_paths
from retention.audit.log import AuditLog, Head, Intent, Outcome, SubjectMode
from retention.audit.preflight import AuditUnverified, Preflight, check_record, verify_before_write
from retention.audit.store import AuditError, AuditInputError, canonical_json, row_hash
from retention.audit.verify import Finding, VerifyReport, verify_log

__all__ = [
    "AuditError",
    "AuditInputError",
    "AuditLog",
    "AuditUnverified",
    "Checkpoint",
    "Finding",
    "Head",
    "Intent",
    "KeyRing",
    "Outcome",
    "Preflight",
    "SubjectMode",
    "VerifyReport",
    "WrittenHead",
    "canonical_json",
    "check_record",
    "generate_key_pair",
    "last_head",
    "load_keyring",
    "load_public_key",
    "load_signing_key",
    "record_head",
    "row_hash",
    "trusted_key_paths",
    "verify_before_write",
    "verify_log",
]
