"""Settings from the environment (and an optional ``.env``). The variable names are a public contract."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.graph.models import GUID_RE


def default_data_dir() -> Path:
    """The platform's user data folder for migrate-bot (e.g. ``~/.local/share/migrate-bot``), whatever the cwd."""
    return user_data_path("migrate-bot", appauthor=False)


CommaList = Annotated[list[str], NoDecode]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting migrate-bot reads. Secrets are ``SecretStr`` so they never print."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"

    # Graph and the admin credential
    graph_base_url: str = "https://graph.microsoft.com/beta"
    graph_auth_mode: Literal["delegated", "application"] = "delegated"
    azure_tenant_id: str | None = None
    azure_client_id: str | None = None
    azure_client_secret: SecretStr | None = None
    azure_client_certificate_path: Path | None = None
    azure_authority_host: str = "https://login.microsoftonline.com"
    azure_authority_ca_bundle: Path | None = None
    graph_static_token: SecretStr | None = None  # rehearsals against the simulator on loopback only
    token_cache_path: Path | None = None
    token_cache_key: SecretStr | None = None

    # State
    data_dir: Path = Field(default_factory=default_data_dir, validation_alias="MIGRATE_BOT_DATA_DIR")
    database_url: str | None = None

    # Poller
    poll_interval_seconds: float = Field(60.0, gt=0)
    stale_after_hours: float = Field(24.0, gt=0)
    admin_mention: str | None = None

    # Who may do what
    allowed_slack_users: CommaList = Field(default_factory=list)
    migrators_usergroup: str | None = None
    allowed_channels: CommaList = Field(default_factory=list)
    require_approval: bool = True
    approvers: CommaList = Field(default_factory=list)
    approvers_usergroup: str | None = None
    allow_self_approval: bool = False
    approval_ttl_hours: float = Field(24.0, gt=0)
    ops_channel: str | None = None

    # Operating it
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(None, ge=1, le=65535)  # /healthz, /readyz and /metrics on their own port

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("allowed_slack_users", "allowed_channels", "approvers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("azure_tenant_id", "azure_client_id")
    @classmethod
    def _guid(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not GUID_RE.match(value):
            raise ValueError("must be a GUID (Directory/Application ID from the Entra app registration)")
        return value or None

    @field_validator("slack_api_url", "graph_base_url", "azure_authority_host")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("graph_base_url")
    @classmethod
    def _graph_version(cls, value: str) -> str:
        """Graph documents these endpoints under ``/beta`` and ``/v1.0``; either is accepted, nothing else."""
        value = value.rstrip("/")
        if not value.endswith(("/beta", "/v1.0")):
            raise ValueError("must end with /beta or /v1.0, e.g. https://graph.microsoft.com/beta")
        return value

    @field_validator("token_cache_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 (make one with: migrate-bot keygen)") from None
        if len(raw) != 32:
            raise ValueError("must decode to 32 bytes (make one with: migrate-bot keygen)")
        return value

    @model_validator(mode="after")
    def _static_token_only_for_loopback(self) -> Settings:
        if self.graph_static_token is not None:
            host = urlsplit(self.graph_base_url).hostname or ""
            if host not in ("127.0.0.1", "localhost", "::1"):
                raise ValueError("GRAPH_STATIC_TOKEN: only allowed when GRAPH_BASE_URL is the simulator on loopback")
        return self

    # Derived values
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'migrate-bot.db'}"

    @property
    def resolved_token_cache_path(self) -> Path:
        return self.token_cache_path or self.data_dir / "token-cache.bin"

    @property
    def cache_key_bytes(self) -> bytes | None:
        if self.token_cache_key is None:
            return None
        return base64.b64decode(self.token_cache_key.get_secret_value())

    @property
    def has_any_credentials(self) -> bool:
        return any(
            value is not None
            for value in (
                self.slack_bot_token,
                self.slack_app_token,
                self.slack_signing_secret,
                self.azure_tenant_id,
                self.azure_client_id,
            )
        )

    # Requirements per command
    def require_slack(self, *, http: bool) -> None:
        """Raise :class:`ConfigError` unless the Slack settings for the chosen transport are present."""
        if self.slack_bot_token is None:
            raise ConfigError("SLACK_BOT_TOKEN: missing (the xoxb- token from OAuth & Permissions)")
        if http and self.slack_signing_secret is None:
            raise ConfigError("SLACK_SIGNING_SECRET: missing (required by --http; from Basic Information)")
        if not http and self.slack_app_token is None:
            raise ConfigError(
                "SLACK_APP_TOKEN: missing (an xapp- token with connections:write for Socket Mode; or run with --http)"
            )

    def require_graph_credential(self) -> None:
        """Raise :class:`ConfigError` unless the admin credential for ``GRAPH_AUTH_MODE`` is configured."""
        if self.graph_static_token is not None:
            return
        if self.azure_tenant_id is None:
            raise ConfigError("AZURE_TENANT_ID: missing (the target tenant's Directory ID)")
        if self.azure_client_id is None:
            raise ConfigError("AZURE_CLIENT_ID: missing (the Application ID of the Entra app registration)")
        if self.graph_auth_mode == "delegated":
            if self.token_cache_key is None:
                raise ConfigError(
                    "TOKEN_CACHE_KEY: missing (32 random bytes in base64; make one with: migrate-bot keygen)"
                )
        elif self.azure_client_secret is None and self.azure_client_certificate_path is None:
            raise ConfigError(
                "AZURE_CLIENT_SECRET: missing (application mode needs it or AZURE_CLIENT_CERTIFICATE_PATH)"
            )
        elif self.azure_client_certificate_path is not None and not self.azure_client_certificate_path.is_file():
            raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH: no such file")


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    loc = first.get("loc") or ()
    if not loc:  # a check across settings names its variable itself
        return message
    return f"{str(loc[0]).upper()}: {message}"


def setting_names() -> frozenset[str]:
    """Every environment variable :class:`Settings` reads (the public contract, e.g. for ``.env.example``)."""
    return frozenset(
        (field.validation_alias if isinstance(field.validation_alias, str) else name).upper()
        for name, field in Settings.model_fields.items()
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings; on any problem raise :class:`ConfigError` with one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
