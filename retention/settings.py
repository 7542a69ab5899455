"""Service settings: environment (RETENTION_*), a TOML file, and systemd credentials."""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from retention.errors import SettingsError
from retention.files import read_bytes
from retention.times import parse_user_time, repeat_seconds
from retention.urls import has_password, has_userinfo, masked

DEFAULT_CONFIG_FILE = Path("/etc/retention/retention.toml")
SECRET_FIELDS = ("client_secret", "refresh_token", "signing_key")
# Secrets the operator adds when using what needs them (alerts, owner notices by mail).
OPTIONAL_SECRETS = ("notify", "smtp_password")
ALL_SECRETS = SECRET_FIELDS + OPTIONAL_SECRETS
# Settings read from a credential of another name than the field's (`notify_urls` -> notify).
_CREDENTIAL_NAMES = {"notify": "notify_urls"}
# Keys that hold a secret by their name, and URLs that carry credentials (`smtp://u:p@host`).
_SECRET_KEY = re.compile(r"(?i)(?:secret|token|password|passwd|signing_key|private_key)$")
_URL_CREDENTIALS = re.compile(r"://[^/@\s:]*:[^/@\s]+@")
# URLs that may carry no user part at all (the client authenticates with its id and secret),
# and the one that may name a user but never a password (the SMTP server's).
_NO_USER_URLS = ("api_base_url", "token_url", "authorize_url")
_IN_URL = "credentials never go in a URL"
_URL_HINT = (
    "take the user and password out of the URL: the API client authenticates with"
    " RETENTION_CLIENT_ID and RETENTION_CLIENT_SECRET, the mail server's user with"
    " RETENTION_SMTP_PASSWORD (or the credential smtp_password); then rotate the password that"
    " was in the URL, as logs and earlier records may hold it (docs/deploy.md)"
)


class CredentialsSource(PydanticBaseSettingsSource):
    """Secrets from systemd credentials: `$CREDENTIALS_DIRECTORY/<name>` or `retention_<name>`."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            return {}
        found: dict[str, Any] = {}
        for name in ALL_SECRETS:
            credential = _CREDENTIAL_NAMES.get(name, name)
            for candidate in (credential, f"retention_{credential}", credential.replace("_", "-")):
                path = Path(directory) / candidate
                if path.is_file():
                    found[name] = path.read_text(encoding="utf-8").strip()
                    break
        return found


def _calls_in_flight(rate_limit: float) -> int:
    """The default concurrency for a rate limit.

    Little's law: reaching the rate at latency L needs rate x L calls in flight; a fixed 8
    capped a 50/s limit at 27/s at 300 ms. Extra workers only queue at the limiter.
    """
    return min(256, max(8, math.ceil(2 * rate_limit)))


class Settings(BaseSettings):
    """Every setting of the service; `retention config show` lists each, its value and source."""

    model_config = SettingsConfigDict(env_prefix="RETENTION_", extra="forbid", allow_inf_nan=False)

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
    trusted_keys: str = Field(
        default="",
        description="Ed25519 public keys that verify older checkpoints (key rotation): .pub"
        " files or folders of them, separated by `:` or `,`",
    )
    checkpoint_command: str = Field(
        default="",
        description="a witness: an argument list (split like a shell, run without one) given"
        " each checkpoint's JSON line on standard input",
    )
    state_dir: Path = Path("/var/lib/retention")
    policy_dir: Path = Path("/etc/retention/policies")
    rate_limit: float = Field(default=10.0, gt=0, le=10_000, description="API requests per second")
    concurrency: int = Field(
        default_factory=lambda data: _calls_in_flight(data["rate_limit"]),
        ge=1,
        le=256,
        description="calls in flight; unset: twice the rate limit (at least 8), which keeps"
        " the limiter busy at up to 2 s latency",
    )
    call_deadline: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="seconds one API call may take, retries included",
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
        le=24 * 365,
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
        default=21600.0,
        gt=0,
        le=30 * 86_400,
        description="seconds a daemon run may take before it is stopped",
    )
    plan_max_age_hours: float = Field(default=24.0, gt=0, le=24 * 366)
    max_deletions_per_run: int = Field(default=10_000, ge=0, le=100_000_000)
    breaker_window: int = Field(
        default=20, ge=1, le=100_000, description="recent removals the breaker weighs"
    )
    max_clock_skew: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description="seconds the host clock may differ from the API's Date",
    )
    breaker_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="share of failed, 403 or 404 answers that stops a run"
    )
    breaker_min_calls: int = Field(
        default=10, ge=1, description="removals answered before the breaker may trip"
    )
    metrics_address: str = "127.0.0.1:9464"
    console_address: str = Field(
        default="",
        description="where the daemon serves the compliance officer's console (HOST:PORT,"
        " behind the single-sign-on proxy); empty: off",
    )
    console_origin: str = Field(
        default="",
        description="the console's address as browsers see it (`https://retention.example.com`);"
        " its host is the passkeys' relying party",
    )
    console_user_header: str = Field(
        default="X-Forwarded-Email",
        description="the header in which the proxy passes the signed-in person's email",
    )
    console_trusted_proxies: str = Field(
        default="",
        description="addresses or networks (comma-separated) whose identity header is trusted;"
        " empty: none, so nobody is signed in",
    )
    console_viewers: str = Field(
        default="",
        description="emails (comma-separated) who may view the console; approvers may too",
    )
    approver_passkeys: str = Field(
        default="",
        description="file of approvers' passkeys: lines `PRINCIPAL CREDENTIAL_ID"
        " PUBLIC_KEY_PEM_BASE64 [comment]`",
    )
    approvers: str = Field(
        default="",
        description="allowed-signers file (ssh-keygen -Y format) naming who may approve plans",
    )
    approvals_required: int = Field(
        default=0,
        ge=0,
        le=100,
        description="approvals by distinct approvers a plan needs before apply; 0: the prompt"
        " or --yes is enough",
    )
    daemon_mode: Literal["apply", "review"] = Field(
        default="apply",
        description="apply: scheduled runs remove; review: they propose plans to approve",
    )
    plans_dir: str = Field(
        default="",
        description="where review mode writes proposals; unset: $RETENTION_STATE_DIR/plans"
        " (with DynamicUser=yes, a folder outside the private state directory)",
    )
    approvers_group: str = Field(
        default="",
        description="the group (the unit's SupplementaryGroups=) that may read proposals and"
        " write their approvals in review mode",
    )
    notify: SecretStr | None = Field(
        default=None,
        description="Apprise URLs the operator's alerts go to, separated by spaces or commas"
        " (a secret: the environment or the credential `notify_urls`, never this file)",
    )
    notify_repeat: str = Field(
        default="24h",
        description="how often the same alert may go out again while its condition lasts:"
        " `24h`, `90m`, or seconds",
    )
    reappear_grace: str = Field(
        default="1h",
        description="how long after a removal a scan that still sees what was removed takes"
        " it for the API catching up, not a reappearance: `1h`, `90m`, seconds; `0`: never"
        " record a reappearance (what was removed stays removed)",
    )
    max_overdue: str = Field(
        default="7d",
        description="how long a policy's oldest overdue removal may wait before an alert and"
        " `retention status` exits 1: `7d`, `36h`, or seconds",
    )
    owner_notice_days: int = Field(
        default=0,
        ge=0,
        le=365,
        description="days ahead organizers are told of their sessions' removals (0: off)",
    )
    notice_contact: str = Field(
        default="", description="whom organizers ask for a hold, named in their notices"
    )
    smtp_url: str = Field(
        default="",
        description="mail server of owner notices: `smtp+starttls://user@host:587`,"
        " `smtps://user@host:465` or `smtp://localhost:25`",
    )
    smtp_password: SecretStr | None = Field(
        default=None, description="the SMTP user's password (a credential, `smtp_password`)"
    )
    notice_from: str = Field(default="", description="the From address of owner notices")
    notice_template: str = Field(
        default="", description="a Jinja2 file replacing the shipped owner notice; empty: it"
    )

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
            check_config_file(toml_file)
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        sources.append(CredentialsSource(settings_cls))
        return tuple(sources)

    @model_validator(mode="after")
    def _breaker_can_trip(self) -> Self:
        if self.breaker_min_calls > self.breaker_window:
            raise ValueError(
                f"breaker_min_calls ({self.breaker_min_calls}) exceeds breaker_window "
                f"({self.breaker_window}): the circuit breaker could never trip"
            )
        return self

    @model_validator(mode="after")
    def _approvers_exist(self) -> Self:
        """With approvals required, someone must be able to approve: an allowed-signers file,
        or a passkeys file (which counts only with the console's origin)."""
        if self.approvals_required < 1:
            return self
        if self.approvers and not Path(self.approvers).is_file():
            raise ValueError(
                f"approvals_required is {self.approvals_required} but approvers names"
                f" {self.approvers}, not a file: no approval could ever count"
            )
        passkeys = bool(self.approver_passkeys) and Path(self.approver_passkeys).is_file()
        if not self.approvers and not (passkeys and self.console_origin):
            raise ValueError(
                f"approvals_required is {self.approvals_required} but neither approvers nor"
                " approver_passkeys (with console_origin) names a file: no approval could ever"
                " count"
            )
        return self

    def check_daemon_mode(self) -> None:
        """The daemon removes only through approved proposals when approvals are required."""
        if self.approvals_required >= 1 and self.daemon_mode != "review":
            raise SettingsError(
                f"RETENTION_APPROVALS_REQUIRED={self.approvals_required} with"
                " RETENTION_DAEMON_MODE=apply: scheduled runs would remove without approvals",
                hint="set RETENTION_DAEMON_MODE=review (scheduled runs then propose plans to"
                " approve), or RETENTION_APPROVALS_REQUIRED=0",
            )

    @property
    def proposals_dir(self) -> Path:
        """Where review mode writes its proposals: RETENTION_PLANS_DIR, else STATE_DIR/plans."""
        return Path(self.plans_dir) if self.plans_dir else self.state_dir / "plans"

    @property
    def approvers_file(self) -> Path | None:
        """The allowed-signers file, or None when no one is named."""
        return Path(self.approvers) if self.approvers else None

    @property
    def passkeys_file(self) -> Path | None:
        """The approvers' passkeys file, or None when no passkey may approve."""
        return Path(self.approver_passkeys) if self.approver_passkeys else None

    @field_validator(*_NO_USER_URLS)
    @classmethod
    def _no_user_in_url(cls, value: str) -> str:
        if has_userinfo(value):
            what = "a user and password" if has_password(value) else "a user"
            raise ValueError(f"holds {what} ({masked(value)}): {_IN_URL}")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _no_password_in_smtp_url(cls, value: str) -> str:
        if has_password(value):
            raise ValueError(f"holds a password ({masked(value, keep_user=True)}): {_IN_URL}")
        return value

    @field_validator("console_trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if part:
                try:
                    ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an address or a network") from None
        return value

    @field_validator("console_origin")
    @classmethod
    def _origin_is_scheme_and_host(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError(
                    f"{value!r} is not an origin: write https://HOST (or http://localhost:PORT)"
                )
        return value.rstrip("/")

    @field_validator("notify_repeat")
    @classmethod
    def _repeat_is_a_duration(cls, value: str) -> str:
        repeat_seconds(value)
        return value

    @field_validator("reappear_grace")
    @classmethod
    def _grace_is_a_duration(cls, value: str) -> str:
        if value.strip() != "0":
            repeat_seconds(value)
        return value

    @property
    def reappear_grace_seconds(self) -> float | None:
        """`reappear_grace` in seconds; None when `0` turns reappearances off."""
        return None if self.reappear_grace.strip() == "0" else repeat_seconds(self.reappear_grace)

    @field_validator("max_overdue")
    @classmethod
    def _max_overdue_is_a_duration(cls, value: str) -> str:
        repeat_seconds(value)
        return value

    @property
    def max_overdue_seconds(self) -> float:
        """`max_overdue` in seconds."""
        return repeat_seconds(self.max_overdue)

    @property
    def notify_repeat_seconds(self) -> float:
        """`notify_repeat` in seconds."""
        return repeat_seconds(self.notify_repeat)

    @property
    def state_db(self) -> Path:
        """The working state (inventory, plans, intents) database."""
        return self.state_dir / "state.db"

    @property
    def scan_start_time(self) -> datetime:
        """`scan_start` as an aware UTC datetime (a date means its midnight, UTC)."""
        return parse_user_time(self.scan_start, option="RETENTION_SCAN_START")

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


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file's table; SettingsError naming the file when it is not UTF-8 TOML."""
    raw = read_bytes(
        path,
        SettingsError,
        f"RETENTION_CONFIG: cannot read {path}",
        "check the file's rights, or point RETENTION_CONFIG elsewhere",
    )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"RETENTION_CONFIG: {path} is not UTF-8 text (byte {exc.start} is {raw[exc.start]:#x})",
            hint="save the file as UTF-8",
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(
            f"RETENTION_CONFIG: {path} is not valid TOML: {exc}",
            hint="fix the line named; `retention init DIR` writes a commented example",
        ) from None


def check_config_file(path: Path) -> dict[str, Any]:
    """The file's table once no key is unknown and no secret is written in it."""
    table = read_config_file(path)
    known = [name for name in Settings.model_fields if name != "config"]
    for key, value in table.items():
        if _is_secret(key, value):
            raise SettingsError(
                f"{path}: a secret is written in the settings file ({key})",
                hint=f"take {key} out of {path}; secrets belong in the environment"
                f" (RETENTION_{key.upper()}) or in a systemd credential,"
                f" $CREDENTIALS_DIRECTORY/{_CREDENTIAL_NAMES.get(key, key)}.",
            )
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            guess = f"did you mean {close[0]}?" if close else "see `retention config show`"
            raise SettingsError(
                f"{path}: {key!r}: unknown setting", hint=f"{guess} (keys are as in the example)"
            )
    return table


def _is_secret(key: str, value: Any) -> bool:
    if key in ALL_SECRETS or _SECRET_KEY.search(key):
        return True
    values = value if isinstance(value, list) else [value]
    return any(isinstance(item, str) and _URL_CREDENTIALS.search(item) for item in values)


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation failures into one SettingsError naming each setting.

    A value that came from the TOML file is named as written there (its key and the file);
    one from the environment by its variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        toml_file = config_file_path()
        in_file = set(read_config_file(toml_file)) if toml_file is not None else set()
        problems = []
        for error in exc.errors():
            if error["type"] == "default_factory_not_called":
                continue  # a default computed from a setting already reported above
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            variable = f"RETENTION_{name.upper()}"
            if name in in_file and variable not in os.environ and name not in overrides:
                problems.append(f"{name} in {toml_file}: {error['msg']}")
            else:
                problems.append(f"{variable}: {error['msg']}")
        in_url = any(_IN_URL in problem for problem in problems)
        raise SettingsError(
            "invalid settings: " + "; ".join(problems),
            hint=_URL_HINT
            if in_url
            else "fix the environment variable or the key in the TOML file named above",
        ) from None
