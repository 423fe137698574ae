"""``migrate-bot check``: a doctor for operators. One line per check, ✓ or ✗ with what to fix; never a secret.

Checks, in order (each runs even when an earlier one failed, unless it needs what failed):

- ``config``     the settings load, and the Slack and Graph credential settings are present;
- ``slack``      ``auth.test`` accepts SLACK_BOT_TOKEN and its scopes (``x-oauth-scopes``) cover :data:`BOT_SCOPES`;
- ``credential`` a Graph token can be had silently (GRAPH_STATIC_TOKEN counts, for simulator rehearsals);
- ``graph``      the cross-tenant migration jobs list answers (first page only);
- ``database``   DATABASE_URL opens and can be written.

Exit status: 0 when every check passed, 1 when any failed, 2 when the settings cannot even be loaded (then
nothing else can be checked; the one ✗ line says which variable is wrong).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from bot.config import Settings, load_settings
from bot.credential.base import StaticToken
from bot.credential.factory import build_credential
from bot.errors import (
    ConfigError,
    CredentialError,
    GraphAuthError,
    GraphError,
    GraphUnavailable,
)
from bot.graph.client import GraphClient
from bot.slack.scopes import BOT_EVENTS, BOT_SCOPES
from bot.store import Store

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
    checks = run_checks(settings, report=lambda check: print(check.line(), file=out, flush=True))
    failed = [check.name for check in checks if not check.ok]
    print(
        f"{len(checks) - len(failed)} of {len(checks)} checks passed"
        + (f"; fix: {', '.join(failed)}" if failed else ""),
        file=out,
    )
    return 1 if failed else 0


def run_checks(settings: Settings, *, report: Callable[[Check], None] = lambda check: None) -> list[Check]:
    """Run every check, calling ``report`` as each one finishes; returns them in order."""
    checks: list[Check] = []

    def done(check: Check) -> None:
        checks.append(check)
        report(check)

    done(check_config(settings))
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
def check_config(settings: Settings) -> Check:
    http = settings.slack_app_token is None  # no app-level token: the bot must serve HTTP (--http)
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
    return Check("config", True, f"settings load; Slack via {transport}; Graph with {graph}{note}")


# Slack


def check_slack(settings: Settings) -> Check:
    if settings.slack_bot_token is None:
        return Check("slack", False, "SLACK_BOT_TOKEN is not set: set the app's Bot User OAuth Token (xoxb-…)")
    client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url, timeout=10)
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
    graph = GraphClient(settings.graph_base_url, tokens, timeout=GRAPH_TIMEOUT, connect_timeout=5.0, max_attempts=1)
    try:
        jobs = graph.list_jobs(max_pages=1)
    except GraphAuthError as error:
        if error.status_code == 401 and settings.graph_static_token is not None:
            fix = "the simulator refused GRAPH_STATIC_TOKEN: set it to the simulator's --token"
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
def _shown_url(url: str) -> str:
    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except ArgumentError:
        return "DATABASE_URL (unparsable)"


def check_database(settings: Settings) -> Check:
    url = settings.resolved_database_url
    shown = _shown_url(url)
    store = None
    try:
        store = Store.from_url(url)
        store.check_writable()
    except (SQLAlchemyError, OSError, ImportError) as error:  # ImportError: no driver for the URL
        cause = getattr(error, "orig", None) or error
        reason = str(cause).splitlines()[0][:200] if str(cause) else type(cause).__name__
        return Check(
            "database",
            False,
            f"{shown} is not writable ({type(cause).__name__}: {reason}): point "
            "DATABASE_URL at a writable database (or MIGRATE_BOT_DATA_DIR at a "
            "writable folder) and check its permissions",
        )
    finally:
        if store is not None:
            store.engine.dispose()
    return Check("database", True, f"{shown} is writable")
