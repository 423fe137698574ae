"""Start-up steps that turn a failure into one line naming the part and the setting.

:class:`~bot.errors.ConfigError` (exit 2) when a setting is wrong, :class:`~bot.errors.ServiceUnreachable` (exit 1)
when a service did not answer. ``bot.cli.main`` prints the line; the traceback only with ``-v``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from bot.config import Settings, default_data_dir
from bot.credential.base import Credential
from bot.credential.factory import build_credential
from bot.errors import ConfigError, CredentialError, ServiceUnreachable
from bot.store import Store

#: auth.test answers that mean the token itself is wrong
SLACK_AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired", "not_allowed_token_type"}
)


def slack_identity(client: WebClient, api_url: str) -> dict:
    """``auth.test`` with SLACK_BOT_TOKEN: the bot's team and user ids."""
    try:
        return dict(client.auth_test().data)  # type: ignore[arg-type]
    except SlackApiError as error:
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        if code in SLACK_AUTH_ERRORS:
            raise ConfigError(
                f"slack: auth.test refused SLACK_BOT_TOKEN ({code}): set it to the app's current Bot User OAuth "
                "Token (xoxb-, OAuth & Permissions)"
            ) from error
        raise ServiceUnreachable(
            f"slack: auth.test failed ({code}) at SLACK_API_URL {api_url}: check Slack's status and SLACK_API_URL"
        ) from error
    except OSError as error:  # URLError, connection refused, DNS, timeouts
        raise ServiceUnreachable(
            f"slack: cannot reach SLACK_API_URL {api_url} ({type(error).__name__}): check the URL, DNS, proxy "
            "and firewall"
        ) from error


def shown_url(url: str) -> str:
    """A database URL fit for a log line or terminal: the password masked, an unparsable URL not repeated."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "DATABASE_URL (unparsable)"
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def database_url_problem(url: str) -> str | None:
    """Why ``url`` can't be used as a database URL (unparsable, unknown dialect, driver missing), or None."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return (
            "DATABASE_URL is not a database URL: use e.g. postgresql+psycopg://user@host/db or "
            "sqlite:////absolute/path.db"
        )
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return f"DATABASE_URL names an unknown database kind '{parsed.drivername}': use postgresql+psycopg:// or sqlite:///"
    except ImportError as error:
        return (
            f"DATABASE_URL needs the driver '{error.name or parsed.drivername}', which is not installed: install it "
            "or pick another driver"
        )
    return None


def open_store(url: str) -> Store:
    """The store for DATABASE_URL (schema created or upgraded)."""
    problem = database_url_problem(url)
    if problem is not None:
        raise ConfigError(f"database: {problem}")
    try:
        return Store.from_url(url)
    except ImportError as error:  # the DBAPI module is imported at the first connect
        raise ConfigError(
            f"database: DATABASE_URL needs the driver '{error.name}', which is not installed: install it or pick "
            "another driver"
        ) from error
    except OperationalError as error:
        reason = str(error.orig).splitlines()[0][:200] if error.orig is not None else type(error).__name__
        if make_url(url).get_backend_name() == "sqlite":  # a local file: the setting (or its folder) is wrong
            raise ConfigError(
                f"database: DATABASE_URL {shown_url(url)} cannot be opened ({reason}): check the path and the "
                "permissions of its folder (or MIGRATE_BOT_DATA_DIR)"
            ) from error
        raise ServiceUnreachable(
            f"database: cannot connect to DATABASE_URL {shown_url(url)} ({reason}): check that the database is up, "
            "and the host, port, name and credentials in DATABASE_URL"
        ) from error
    except (SQLAlchemyError, OSError) as error:
        raise ConfigError(
            f"database: DATABASE_URL {shown_url(url)} cannot be used ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}): check DATABASE_URL or MIGRATE_BOT_DATA_DIR"
        ) from error


def admin_credential(settings: Settings) -> Credential:
    """The credential for ``GRAPH_AUTH_MODE``; a setting it can't use names the credential part. A token cache
    that TOKEN_CACHE_KEY does not decrypt is such a setting; nobody signed in is not (the bot starts and alerts)."""
    try:
        credential = build_credential(settings)
    except (ConfigError, CredentialError) as error:
        raise ConfigError(f"credential: {error}") from error
    readable = getattr(credential, "check_cache_readable", None)
    if callable(readable):
        try:
            readable()
        except CredentialError as error:
            credential.close()
            raise ConfigError(f"credential: {error}") from error
    return credential


def connect_socket_mode(handler: Any, api_url: str) -> None:
    """Open the Socket Mode connection (``apps.connections.open`` with SLACK_APP_TOKEN, then the WebSocket)."""
    try:
        handler.connect()
    except SlackApiError as error:
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        if code in SLACK_AUTH_ERRORS:
            raise ConfigError(
                f"slack: apps.connections.open refused SLACK_APP_TOKEN ({code}): set it to an app-level token "
                "(xapp-) with connections:write (Basic Information > App-Level Tokens)"
            ) from error
        raise ServiceUnreachable(
            f"slack: apps.connections.open failed ({code}) at SLACK_API_URL {api_url}: check Slack's status"
        ) from error
    except OSError as error:
        raise ServiceUnreachable(
            f"slack: the Socket Mode connection could not be opened ({type(error).__name__}): check DNS, proxy "
            "and firewall (outbound WebSocket to Slack)"
        ) from error


def older_database_note(settings: Settings) -> str | None:
    """Versions before the platform data folder kept the database in ``./data``: name one found there that the
    default no longer uses, with the setting that keeps it (None when there is nothing to say)."""
    if settings.database_url is not None or settings.data_dir != default_data_dir():
        return None
    older = Path("data") / "migrate-bot.db"
    if not older.is_file() or (settings.data_dir / "migrate-bot.db").exists():
        return None
    return (
        f"an older database is at {older.resolve()} (the default data folder was ./data before): set "
        f"MIGRATE_BOT_DATA_DIR={older.resolve().parent} to keep using it"
    )
