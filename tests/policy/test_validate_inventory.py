"""`retention validate` checks names against the inventory once a scan has filled it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from retention.cli.app import cli
from retention.engine.inventory import store_directory
from retention.engine.state import open_state_db
from retention.goto.models import Group, Organizer

POLICY = """policies:
  - name: sales-recordings
    description: d
    action: delete_recordings
    after: 30d
    scope: {groups: [Sales, Marketing]}
"""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "state"
    db = open_state_db(directory / "state.db")
    organizer = Organizer.model_validate({"organizerKey": 1001, "email": "ana@example.com"})
    group = Group.model_validate({"groupkey": 4411, "groupName": "Sales", "numOrganizers": 1})
    store_directory(db, [organizer], [group], datetime(2026, 1, 1, tzinfo=UTC))
    db.close()
    monkeypatch.setenv("RETENTION_STATE_DIR", str(directory))
    monkeypatch.setenv("RETENTION_CONFIG", "")
    return directory


def test_validate_refuses_a_group_the_inventory_does_not_know(
    state_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    assert f"{path}:6:29: unknown group 'Marketing'" in result.output
    assert "policy files do not fit the inventory (1 error)" in result.output


def test_validate_passes_names_the_inventory_knows(state_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY.replace(", Marketing", ""), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "warning: policy 'sales-recordings' matches no session in the inventory" in result.output
