"""Fixtures of the in-process engine tests: a real audit record in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retention.audit import AuditLog


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog.open(
        tmp_path / "audit.db", subject_mode="omit", clock=lambda: datetime.now(UTC)
    )
    yield opened
    opened.close()
