"""The systemd units and the settings example: systemd accepts them, they keep their contract."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retention import examples
from retention.settings import ALL_SECRETS, SECRET_FIELDS, Settings, load_settings

DEPLOY = examples.SYSTEMD
UNITS = ("retention.service", "retention-run.service", "retention-run.timer")
TEMPLATES = ("retention@.service", "retention-run@.service", "retention-run@.timer")
SERVICES = ["retention.service", "retention-run.service", *TEMPLATES[:2]]
INSTALLED_BINARY = "/opt/retention/venv/bin/retention"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is absent")


def directives(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, a key possibly repeated (systemd allows it)."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / unit).read_text().splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    return subprocess.run(
        [SYSTEMD_ANALYZE, *args], capture_output=True, text=True, timeout=120, check=False
    )


def runnable_copies(tmp_path: Path, exec_start: str, instance: str | None = None) -> list[Path]:
    """The units with ExecStart= pointing at `exec_start`: verify checks the binary exists.

    With `instance`, the template units instead, each copied under its instance's name
    (`retention@acme.service`), as systemd reads an instance of a template.
    """
    copies = []
    for unit in UNITS if instance is None else TEMPLATES:
        copy = tmp_path / unit.replace("@.", f"@{instance}.")
        copy.write_text((DEPLOY / unit).read_text().replace(INSTALLED_BINARY, exec_start))
        copies.append(copy)
    return copies


def instantiated(tmp_path: Path, unit: str, instance: str) -> Path:
    """A template unit copied under an instance's name, unchanged otherwise."""
    copy = tmp_path / unit.replace("@.", f"@{instance}.")
    copy.write_text((DEPLOY / unit).read_text())
    return copy


@needs_systemd
@pytest.mark.systemd
@pytest.mark.parametrize("unit", SERVICES)
def test_service_unit_exposure_is_at_most_1_5(unit: str, tmp_path: Path) -> None:
    path = instantiated(tmp_path, unit, "acme") if "@" in unit else DEPLOY / unit
    result = analyze("security", "--offline=yes", "--threshold=15", str(path))
    name = re.escape(path.name)
    match = re.search(rf"Overall exposure level for {name}: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= 1.5
    assert result.returncode == 0, result.stderr


@needs_systemd
@pytest.mark.systemd
def test_units_pass_systemd_verify(tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "retention"
    assert binary.is_file()
    result = analyze("verify", *map(str, runnable_copies(tmp_path, str(binary))))
    assert result.returncode == 0, result.stderr
    assert "retention" not in result.stderr


@needs_systemd
@pytest.mark.systemd
def test_two_instances_of_the_template_units_pass_systemd_verify(tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "retention"
    copies = [
        copy
        for instance in ("acme", "globex")
        for copy in runnable_copies(tmp_path, str(binary), instance=instance)
    ]
    result = analyze("verify", *map(str, copies))
    assert result.returncode == 0, result.stderr
    assert "retention" not in result.stderr


@needs_systemd
@pytest.mark.systemd
def test_verify_catches_a_unit_whose_binary_is_missing(tmp_path: Path) -> None:
    result = analyze("verify", *map(str, runnable_copies(tmp_path, str(tmp_path / "absent"))))
    assert result.returncode != 0
    assert "is not executable" in result.stderr


def test_daemon_unit_is_a_notify_service_with_watchdog_reload_and_restart() -> None:
    unit = directives("retention.service")
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == [f"{INSTALLED_BINARY} daemon"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["2"], "invalid settings: no restart every 30 s"
    assert int(unit["WatchdogSec"][0]) > 0
    assert unit["DynamicUser"] == ["yes"]
    assert unit["StateDirectory"] == ["retention"]
    assert unit["ConfigurationDirectory"] == ["retention"]


def test_every_unit_that_restarts_stops_restarting_on_invalid_input() -> None:
    restarting = [u for u in (*UNITS, *TEMPLATES) if "Restart" in directives(u)]
    assert restarting == ["retention.service", "retention@.service"]
    for unit in restarting:
        assert directives(unit)["RestartPreventExitStatus"] == ["2"], unit


@pytest.mark.parametrize("unit", TEMPLATES[:2])
def test_each_instance_has_its_own_settings_state_policies_and_credentials(unit: str) -> None:
    found = directives(unit)
    plain = directives(unit.replace("@", ""))
    environment = dict(value.split("=", 1) for value in found["Environment"])
    assert environment == {
        "RETENTION_CONFIG": "/etc/retention/%i.toml",
        "RETENTION_STATE_DIR": "/var/lib/retention/%i",
        "RETENTION_POLICY_DIR": "/etc/retention/%i/policies",
    }
    assert found["StateDirectory"] == ["retention/%i"]
    credentials = dict(value.split(":", 1) for value in found["LoadCredentialEncrypted"])
    assert credentials == {
        name: f"/etc/credstore.encrypted/retention-%i.{name}" for name in credentials
    }
    assert sorted(credentials) == sorted(v.split(":")[0] for v in plain["LoadCredentialEncrypted"])
    # Everything else, the hardening first of all, is the single-account unit's.
    varying = {"Description", "Environment", "LoadCredentialEncrypted", "StateDirectory"}
    assert {k: v for k, v in found.items() if k not in varying | {"SyslogIdentifier"}} == {
        k: v for k, v in plain.items() if k not in varying
    }


def test_the_template_timer_triggers_its_own_instance_as_the_plain_one_does() -> None:
    timer = directives("retention-run@.timer")
    plain = directives("retention-run.timer")
    assert "Unit" not in timer, "retention-run@X.timer starts retention-run@X.service"
    assert {k: v for k, v in timer.items() if k != "Description"} == {
        k: v for k, v in plain.items() if k != "Description"
    }


@pytest.mark.parametrize("unit", SERVICES)
def test_every_credential_the_unit_loads_is_read_by_the_settings(
    unit: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [value.split(":", 1)[0] for value in directives(unit)["LoadCredentialEncrypted"]]
    assert sorted(ids) == sorted(SECRET_FIELDS)
    for credential in ids:
        (tmp_path / credential).write_text(f"value-of-{credential}\n")
    for name in SECRET_FIELDS:
        monkeypatch.delenv(f"RETENTION_{name.upper()}", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("RETENTION_CONFIG", str(tmp_path / "empty.toml"))
    settings = load_settings()
    for credential in ids:
        secret = getattr(settings, credential)
        assert secret.get_secret_value() == f"value-of-{credential}"


def test_timer_runs_the_oneshot_daily_persistently_with_a_random_delay() -> None:
    timer = directives("retention-run.timer")
    assert timer["Persistent"] == ["true"]
    assert timer["RandomizedDelaySec"] == ["30min"]
    assert timer["OnCalendar"] == ["*-*-* 03:00:00"]
    run = directives("retention-run.service")
    assert run["Type"] == ["oneshot"]
    assert run["ExecStart"] == [f"{INSTALLED_BINARY} run --yes"]


def test_settings_example_documents_every_setting_with_its_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = examples.SETTINGS.read_text()
    assignment = re.compile(r"^# ([a-z_]+) = ")
    keys = [m.group(1) for line in example.splitlines() if (m := assignment.match(line))]
    assert sorted(keys) == sorted(set(Settings.model_fields) - {"config", *ALL_SECRETS})
    uncommented = tmp_path / "retention.toml"
    uncommented.write_text(
        "\n".join(line[2:] if assignment.match(line) else line for line in example.splitlines())
    )
    for name in Settings.model_fields:
        monkeypatch.delenv(f"RETENTION_{name.upper()}", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("RETENTION_CONFIG", str(uncommented))
    loaded = load_settings()
    for key in keys:
        if key != "client_id":  # the one placeholder: it has no default
            field = Settings.model_fields[key]
            default = field.get_default(
                call_default_factory=True, validated_data={"rate_limit": 10.0}
            )
            assert getattr(loaded, key) == default, key
    assert loaded.client_id == "your-client-id"
