"""``migrate-bot check``: a doctor for operators. One line per check, ✓ or ✗ with what to fix; never a secret.

Checks, in order (each runs even when an earlier one failed, unless it needs what failed):

- ``config``     the settings load, and the Slack and Graph credential settings are present;
- ``slack``      ``auth.test`` accepts SLACK_BOT_TOKEN and its scopes (``x-oauth-scopes``) cover :data:`BOT_SCOPES`;
- ``credential`` a Graph token can be had silently (GRAPH_STATIC_TOKEN counts, for simulator rehearsals);
- ``graph``      the cross-tenant migration jobs list answers (first page only);
- ``database``   where the database is (DATABASE_URL, or the data folder), that it opens, and that it could be
                 written; opened read-only: ``check`` never creates a file or folder.

``--http``/``--socket`` pick the transport as for ``run`` (Socket Mode by default), so both name the same missing
setting. Only these lines are printed: logging (slack_sdk's included) is off while the checks run.

Exit status: 0 when every check passed, 1 when any failed, 2 when the settings cannot even be loaded (then
nothing else can be checked; the one ✗ line says which variable is wrong).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from slack_sdk.errors import SlackApiError
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings, load_settings
from bot.credential.base import StaticToken
from bot.credential.factory import build_credential
from bot.db import schema
from bot.errors import (
    ConfigError,
    CredentialError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
)
from bot.factories import build_graph, build_slack_client
from bot.ops.startup import database_url_problem, older_database_note, shown_url
from bot.slack.scopes import BOT_EVENTS, BOT_SCOPES

OK, FAIL = "✓", "✗"
GRAPH_TIMEOUT = 15.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{OK if self.ok else FAIL} {self.name:<10} {self.detail}"


def check_command(args: Any, settings: Settings | None, *, out: TextIO | None = None) -> int:
    """``migrate-bot check``. ``settings`` None: load them here, so a broken setting is a ✗ line, not a crash."""
    out = out or sys.stdout
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as error:
            print(
                Check(
                    "config",
                    False,
                    f"{error}: fix it in the environment or .env; nothing else can be checked until the settings load",
                ).line(),
                file=out,
            )
            return 2
    http = bool(getattr(args, "http", False))
    with _silenced():
        checks = run_checks(settings, http=http, report=lambda check: print(check.line(), file=out, flush=True))
    failed = [check.name for check in checks if not check.ok]
    print(
        f"{len(checks) - len(failed)} of {len(checks)} checks passed"
        + (f"; fix: {', '.join(failed)}" if failed else ""),
        file=out,
    )
    return 1 if failed else 0


@contextmanager
def _silenced() -> Iterator[None]:
    """No log line (slack_sdk's, httpx's, the credential's) mixes into the ✓/✗ lines, not even with -v."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def run_checks(
    settings: Settings, *, http: bool = False, report: Callable[[Check], None] = lambda check: None
) -> list[Check]:
    """Run every check for the transport ``run`` would use (``http``), calling ``report`` as each one finishes."""
    checks: list[Check] = []

    def done(check: Check) -> None:
        checks.append(check)
        report(check)

    done(check_config(settings, http=http))
    done(check_slack(settings))
    tokens, credential_check, close = check_credential(settings)
    done(credential_check)
    try:
        done(check_graph(settings, tokens))
    finally:
        close()
    done(check_database(settings))
    return checks


# Config
def check_config(settings: Settings, *, http: bool = False) -> Check:
    """The settings ``run`` (or ``run --http``) requires, named exactly as ``run`` names them."""
    problems = []
    for require in (lambda: settings.require_slack(http=http), settings.require_graph_credential):
        try:
            require()
        except ConfigError as error:
            problems.append(str(error))
    if problems:
        return Check("config", False, "; ".join(problems) + ": set it in the environment or .env")
    transport = "HTTP (--http)" if http else "Socket Mode"
    graph = (
        "GRAPH_STATIC_TOKEN (simulator rehearsal)"
        if settings.graph_static_token is not None
        else f"{settings.graph_auth_mode} credential"
    )
    note = "" if settings.ops_channel else "; note: OPS_CHANNEL is not set, credential alerts go to the log only"
    return Check(
        "config",
        True,
        f"settings load; Slack via {transport}; Graph with {graph}; data folder {settings.data_dir}{note}",
    )


# Slack


def check_slack(settings: Settings) -> Check:
    if settings.slack_bot_token is None:
        return Check("slack", False, "SLACK_BOT_TOKEN is not set: set the app's Bot User OAuth Token (xoxb-…)")
    client = build_slack_client(settings, timeout=10, retries=False)  # a diagnosis: one try, no waiting
    try:
        response = client.auth_test()
    except SlackApiError as error:
        code = error.response.get("error") or f"HTTP {error.response.status_code}"
        if code in ("invalid_auth", "not_authed", "token_revoked", "account_inactive", "token_expired"):
            return Check(
                "slack",
                False,
                f"auth.test refused SLACK_BOT_TOKEN ({code}): set SLACK_BOT_TOKEN to the "
                "app's current Bot User OAuth Token (OAuth & Permissions), or reinstall the "
                "app from manifest.yml",
            )
        return Check("slack", False, f"auth.test failed ({code}): check SLACK_API_URL and Slack's status")
    except OSError as error:
        return Check(
            "slack",
            False,
            f"cannot reach Slack at SLACK_API_URL {settings.slack_api_url} "
            f"({type(error).__name__}): check the URL, DNS, proxy and firewall",
        )
    who = f"{response.get('user') or response.get('user_id')} in {response.get('team') or response.get('team_id')}"
    header = next((value for name, value in (response.headers or {}).items() if name.lower() == "x-oauth-scopes"), None)
    if header is None:
        return Check(
            "slack",
            False,
            f"auth.test ok as {who}, but Slack sent no x-oauth-scopes header, so the "
            "scopes can't be checked: is SLACK_API_URL Slack's Web API?",
        )
    granted = {scope.strip() for scope in str(header).split(",") if scope.strip()}
    missing = [scope for scope in BOT_SCOPES if scope not in granted]
    if missing:
        return Check(
            "slack",
            False,
            f"auth.test ok as {who}, but the token lacks scopes {', '.join(missing)}: "
            "reinstall the app from manifest.yml (app settings > Install App > Reinstall)",
        )
    return Check(
        "slack",
        True,
        f"auth.test ok as {who}; scopes cover {', '.join(BOT_SCOPES)}; the app must also subscribe to the "
        f"bot events {', '.join(BOT_EVENTS)} and enable the Home tab (manifest.yml; Slack does not report these)",
    )


# Credential
def check_credential(settings: Settings) -> tuple[Any, Check, Callable[[], None]]:
    """(a token source for the Graph check or None, the check, a close function)."""
    if settings.graph_static_token is not None:
        return (
            StaticToken(settings.graph_static_token.get_secret_value()),
            Check("credential", True, "GRAPH_STATIC_TOKEN is set (simulator on loopback; no admin credential)"),
            lambda: None,
        )
    try:
        credential = build_credential(settings)
    except (ConfigError, CredentialError) as error:
        return None, Check("credential", False, f"{error}"), lambda: None
    try:
        credential.token()
    except CredentialError as error:
        code = f" [{error.code}]" if error.code else ""
        return None, Check("credential", False, f"no token silently: {error}{code}"), credential.close
    status = credential.status()
    if status.mode == "application":
        who = f"the app {status.client_id} ({status.credential_kind})"
    else:
        who = status.username or "the signed-in admin"
    return (
        credential,
        Check("credential", True, f"token acquired silently as {who} in tenant {status.tenant_id} ({status.mode})"),
        credential.close,
    )


# Graph
def check_graph(settings: Settings, tokens: Any) -> Check:
    if tokens is None:
        return Check("graph", False, "not checked: there is no token (fix the credential first)")
    graph = build_graph(settings, tokens, timeout=GRAPH_TIMEOUT, connect_timeout=5.0, max_attempts=1)
    try:
        jobs = graph.list_jobs(max_pages=1)
    except GraphAuthError as error:
        if error.status_code == 401 and settings.graph_static_token is not None:
            fix = (
                "the simulator refused GRAPH_STATIC_TOKEN (unknown, malformed or expired): set it to a token "
                "`migrate-bot simulator` printed, or to its --token"
            )
        elif error.status_code == 401:
            fix = "Graph refused the admin's token: run migrate-bot login on the bot's host"
        else:
            fix = (
                "the admin lacks the Microsoft 365 Migration Administrator or Global Administrator role (or a "
                "PIM role is not active), or the app lacks consent for CrossTenantContentMigration.ReadWrite.All"
            )
        return Check("graph", False, f"listing jobs failed: {error}. Fix: {fix}")
    except GraphUnavailable as error:
        why = str(error) if error.status_code else error.info.message
        return Check(
            "graph",
            False,
            f"cannot reach Microsoft Graph at GRAPH_BASE_URL {settings.graph_base_url}: "
            f"{why} Check the URL, proxy and firewall",
        )
    except GraphError as error:
        return Check("graph", False, f"listing jobs failed: {error}. Fix: {error.hint}")
    except CredentialError as error:
        return Check("graph", False, f"no token: {error}")
    finally:
        graph.close()
    return Check(
        "graph",
        True,
        f"the jobs list answers at {settings.graph_base_url} "
        f"({len(jobs)} job{'' if len(jobs) == 1 else 's'} on the first page)",
    )


# Database
def check_database(settings: Settings) -> Check:
    """Where the database is and whether ``run`` could use it; never creates or writes anything."""
    url = settings.resolved_database_url
    shown = shown_url(url) + ("" if settings.database_url else f" (in the data folder {settings.data_dir})")
    problem = database_url_problem(url)
    if problem is not None:
        return Check("database", False, f"{shown}: {problem}")
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        check = _check_sqlite(parsed, shown)
        note = older_database_note(settings)
        return Check("database", check.ok, f"{check.detail}; note: {note}") if note else check
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            present = inspect(engine).has_table("runs")
            revision = schema.revision_of(connection)
    except (SQLAlchemyError, ImportError, OSError) as error:
        cause = getattr(error, "orig", None) or error
        reason = str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__
        return Check(
            "database",
            False,
            f"{shown} does not open ({type(cause).__name__}: {reason}): check that it is up and the host, port, "
            "name and credentials in DATABASE_URL",
        )
    finally:
        engine.dispose()
    problem = schema.too_new(revision)
    if problem is not None:
        return Check("database", False, f"{shown}: {problem}")
    tables = f"schema {revision or 'not stamped'}" if present else "no tables yet (`migrate-bot run` creates them)"
    return Check("database", True, f"{shown} opens; {tables}")


def _sqlite_path(parsed: URL) -> tuple[Path | None, bool]:
    """The SQLite file (None: in memory) and whether the URL opens it read-only (``mode=ro``)."""
    database = parsed.database or ""
    if database in ("", ":memory:"):
        return None, False
    if database.startswith("file:"):
        path, _, query = database.removeprefix("file:").partition("?")
        read_only = "mode=ro" in query or parsed.query.get("mode") == "ro"
        return Path(path).expanduser(), read_only
    return Path(database).expanduser(), False


def _can_hold_files(folder: Path) -> str | None:
    """Why a file can't be created in ``folder`` (checked without creating one), or None."""
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    stats = os.statvfs(folder)
    if stats.f_flag & os.ST_RDONLY:
        return f"the folder {folder} is on a read-only file system"
    if stats.f_bavail == 0:
        return f"the file system of {folder} has no free space (or holds no files)"
    return None


def _check_sqlite(parsed: URL, shown: str) -> Check:
    path, read_only = _sqlite_path(parsed)
    if path is None:
        return Check("database", True, f"{shown}: in memory (nothing is kept after the bot stops)")
    fix = "point DATABASE_URL (or MIGRATE_BOT_DATA_DIR) at a writable place"
    if not path.exists():
        ancestor = next((folder for folder in path.parents if folder.exists()), Path("/"))
        why = _can_hold_files(ancestor) if ancestor.is_dir() else f"{ancestor} is not a folder"
        if why is not None:
            return Check("database", False, f"{shown} does not exist and cannot be created: {why}: {fix}")
        return Check(
            "database", True, f"{shown} does not exist yet: `migrate-bot run` creates it (check the path for a typo)"
        )
    try:
        # immutable: a WAL database opened read-only would otherwise get its -wal and -shm files created
        live = Path(f"{path}-wal").exists()
        connection = sqlite3.connect(f"file:{path}?{'mode=ro' if live else 'immutable=1'}", uri=True)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            stamped = (
                connection.execute("SELECT version_num FROM alembic_version").fetchone()
                if ("alembic_version" in tables)
                else None
            )
        finally:
            connection.close()
    except sqlite3.Error as error:
        return Check("database", False, f"{shown} does not open ({type(error).__name__}: {error}): {fix}")
    if read_only:
        return Check(
            "database", False, f"{shown} is not writable (readonly: DATABASE_URL opens it with mode=ro): {fix}"
        )
    why = None if os.access(path, os.W_OK) else f"the file {path} is readonly"
    why = why or _can_hold_files(path.parent)  # SQLite writes its journal beside the file
    if why is not None:
        return Check("database", False, f"{shown} is not writable ({why}): {fix}")
    problem = schema.too_new(stamped[0] if stamped else None)
    if problem is not None:
        return Check("database", False, f"{shown}: {problem}")
    state = "its tables exist" if "runs" in tables else "no tables yet (`migrate-bot run` creates them)"
    return Check("database", True, f"{shown} opens and is writable; {state}")
