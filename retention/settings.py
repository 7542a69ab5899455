"""Service settings: environment (RETENTION_*), a TOML file, and systemd credentials."""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from retention.errors import SettingsError

DEFAULT_CONFIG_FILE = Path("/etc/retention/retention.toml")
SECRET_FIELDS = ("client_secret", "refresh_token", "signing_key")


class CredentialsSource(PydanticBaseSettingsSource):
    """Secrets from systemd credentials: `$CREDENTIALS_DIRECTORY/<name>` or `retention_<name>`."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            return {}
        found: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            for candidate in (name, f"retention_{name}", name.replace("_", "-")):
                path = Path(directory) / candidate
                if path.is_file():
                    found[name] = path.read_text(encoding="utf-8").strip()
                    break
        return found


class Settings(BaseSettings):
    """Every setting of the service; see DESIGN.md for the contract of each name."""

    model_config = SettingsConfigDict(env_prefix="RETENTION_", extra="forbid")

    config: Path | None = Field(default=None, description="TOML settings file")
    api_base_url: str = "https://api.getgo.com/G2M/rest"
    token_url: str = "https://authentication.logmeininc.com/oauth/token"  # noqa: S105
    authorize_url: str = "https://authentication.logmeininc.com/oauth/authorize"
    redirect_uri: str = Field(
        default="http://127.0.0.1:8765/callback",
        description="OAuth redirect URI registered for the client (auth login)",
    )
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    signing_key: SecretStr | None = Field(
        default=None, description="Ed25519 private key (PEM) for audit checkpoints"
    )
    state_dir: Path = Path("/var/lib/retention")
    policy_dir: Path = Path("/etc/retention/policies")
    rate_limit: float = Field(default=10.0, gt=0, description="API requests per second")
    concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="calls in flight; unset: twice the rate limit (at least 8), which keeps"
        " the limiter busy at up to 2 s latency",
    )
    call_deadline: float = Field(
        default=300.0, gt=0, description="seconds one API call may take, retries included"
    )
    max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="largest API or token answer read, in bytes; a larger one fails its call",
    )
    ca_bundle: str = Field(
        default="",
        description="PEM file of CA certificates to verify the API's TLS with; empty: the system's",
    )
    scan_window_days: int = Field(default=30, ge=1, le=60)
    scan_start: str = Field(default="2015-01-01", description="earliest date the scan reads")
    settle_hours: int = Field(
        default=6,
        ge=0,
        description="hours after a meeting ends in which its recording may still appear (GoTo:"
        " minutes); such meetings are read again by the next scan",
    )
    audit_subject: Literal["keep", "hash", "omit"] = "hash"
    default_schedule: str = Field(
        default="0 3 * * *",
        description="the daemon's schedule for policies naming none: a 5-field crontab (UTC),"
        " or `@every N[s|m|h]` for trials and tests",
    )
    run_deadline: float = Field(
        default=21600.0, gt=0, description="seconds a daemon run may take before it is stopped"
    )
    plan_max_age_hours: float = Field(default=24.0, gt=0)
    max_deletions_per_run: int = Field(default=10_000, ge=0)
    breaker_window: int = Field(default=20, ge=1, description="recent removals the breaker weighs")
    breaker_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="share of failed, 403 or 404 answers that stops a run"
    )
    breaker_min_calls: int = Field(
        default=10, ge=1, description="removals answered before the breaker may trip"
    )
    metrics_address: str = "127.0.0.1:9464"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = config_file_path()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        sources.append(CredentialsSource(settings_cls))
        return tuple(sources)

    @model_validator(mode="after")
    def _calls_in_flight(self) -> Self:
        # Little's law: reaching the rate at latency L needs rate x L calls in flight; a fixed 8
        # capped a 50/s limit at 27/s at 300 ms. Extra workers only queue at the limiter.
        if "concurrency" not in self.model_fields_set:
            self.concurrency = min(256, max(8, math.ceil(2 * self.rate_limit)))
        return self

    @model_validator(mode="after")
    def _breaker_can_trip(self) -> Self:
        if self.breaker_min_calls > self.breaker_window:
            raise ValueError(
                f"breaker_min_calls ({self.breaker_min_calls}) exceeds breaker_window "
                f"({self.breaker_window}): the circuit breaker could never trip"
            )
        return self

    @property
    def state_db(self) -> Path:
        """The working state (inventory, plans, intents) database."""
        return self.state_dir / "state.db"

    @property
    def scan_start_time(self) -> datetime:
        """`scan_start` as an aware UTC datetime (a date means its midnight, UTC)."""
        try:
            moment = datetime.fromisoformat(self.scan_start)
        except ValueError:
            raise SettingsError(
                f"RETENTION_SCAN_START: {self.scan_start!r} is not an ISO 8601 date or time",
                hint="use a date such as 2015-01-01",
            ) from None
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @property
    def audit_db(self) -> Path:
        """The audit record, kept apart from the working state."""
        return self.state_dir / "audit.db"


def config_file_path() -> Path | None:
    """The TOML file in force: $RETENTION_CONFIG, else the default path when it exists."""
    named = os.environ.get("RETENTION_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise SettingsError(
                f"RETENTION_CONFIG names {path}, which is not a readable file",
                hint="point RETENTION_CONFIG at a TOML settings file, or unset it",
            )
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation failures into one SettingsError naming each setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"RETENTION_{name.upper()}: {error['msg']}")
        raise SettingsError(
            "invalid settings: " + "; ".join(problems),
            hint="fix the environment variable or the matching key in the TOML file",
        ) from None
