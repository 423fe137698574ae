"""``migrate-bot login | logout | auth status | keygen``: the operator's side of the admin credential.

Each function takes ``(args, settings)`` and returns an exit status; errors are raised as
:class:`~bot.errors.ConfigError` (exit 2) or :class:`~bot.errors.CredentialError` (exit 1) for ``bot.cli.main``.
Nothing here prints a token, a secret or the cache key (except ``keygen``, whose job is to print a new key).
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from datetime import UTC, datetime

from bot.config import Settings
from bot.credential.base import TransientCredentialError, describe_time
from bot.credential.db_cache import DbCacheStore
from bot.credential.delegated import AdminCredential, forget_admin
from bot.credential.factory import build_credential
from bot.credential.msal_app import utc_from_epoch
from bot.credential.token_cache import CacheMetadata
from bot.errors import ConfigError, CredentialError
from bot.store import create_db_engine, migrate_schema


def login_command(args: argparse.Namespace, settings: Settings) -> int:
    """Device code sign-in of the admin. 0 when signed in; raises on refusal (wrong tenant, declined, ...)."""
    if settings.graph_auth_mode != "delegated":
        raise ConfigError(
            "GRAPH_AUTH_MODE: login is for delegated mode; application mode uses AZURE_CLIENT_SECRET or "
            "AZURE_CLIENT_CERTIFICATE_PATH (check it with: migrate-bot auth status)"
        )
    settings.require_graph_credential()
    with AdminCredential(settings) as credential:
        print(f"Signing in the migration admin for tenant {credential.tenant_id} (app {credential.client_id}).")
        print("Complete the sign-in on any device; only share this code with the admin who signs in.", flush=True)
        try:
            status = credential.login(show=lambda message: print(message, flush=True))
        except CredentialError as error:
            raise login_failed(error, settings) from error
    print(f"Signed in as {status.username or status.home_account_id} (tenant {status.tenant_id}).")
    print(f"The token cache is {credential.cache_location} (encrypted with TOKEN_CACHE_KEY).")
    return 0


def login_failed(error: CredentialError, settings: Settings) -> CredentialError:
    """The login's failure, saying what to do next (a silent refresh's "the bot will retry" does not apply)."""
    if isinstance(error, TransientCredentialError):
        text = (
            f"Login failed: Microsoft Entra ID could not be reached or answered with a server error at "
            f"AZURE_AUTHORITY_HOST {settings.azure_authority_host}. Nothing was signed in. Next: check this host's "
            "network, proxy and firewall (and AZURE_AUTHORITY_CA_BUNDLE behind a TLS-inspecting proxy), then run "
            "migrate-bot login again."
        )
    else:
        text = f"Login failed: {error} Nothing was signed in"
        if "migrate-bot login" not in str(error):
            text += "; fix the cause above, then run migrate-bot login again"
        text += "."
    return CredentialError(text, code=error.code)


def logout_command(args: argparse.Namespace, settings: Settings) -> int:
    """Delete the token cache and its metadata (works without the key, so it also starts over after a lost key)."""
    shared = settings.resolved_database_url.startswith("postgresql")
    where = "the token_cache table of DATABASE_URL" if shared else settings.resolved_token_cache_path
    removed = forget_admin_everywhere(settings)
    if not removed:
        print(f"No admin was signed in (no token cache in {where}).")
        return 0
    print("Signed out: removed " + ", ".join(str(p) for p in removed) + ".")
    print(
        "The admin's refresh token stays valid at Microsoft Entra ID until it expires; to end it now, revoke the "
        "admin's sessions in the Entra admin center."
    )
    return 0


def forget_admin_everywhere(settings: Settings) -> list:
    """Delete the admin's cache where this configuration keeps it: the database row (PostgreSQL) or the files."""
    if not settings.resolved_database_url.startswith("postgresql"):
        return forget_admin(settings.resolved_token_cache_path)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate_schema(engine)
        return DbCacheStore(engine, b"\0" * 32).forget()  # deleting needs no key
    finally:
        engine.dispose()


def auth_command(args: argparse.Namespace, settings: Settings) -> int:
    """``auth status``: mode, tenant, account and token freshness. 0 when usable, 1 when not."""
    if getattr(args, "action", "status") != "status":  # pragma: no cover - argparse restricts the choices
        raise ConfigError(f"auth: unknown action {args.action}")
    if (
        settings.graph_auth_mode == "delegated"
        and settings.token_cache_key is None
        and settings.graph_static_token is None
    ):
        return status_without_key(settings)
    credential = build_credential(settings)
    try:
        status = credential.status()
    finally:
        credential.close()
    for line in status.describe():
        print(line)
    return 0 if status.ok else 1


def status_without_key(settings: Settings) -> int:
    """``auth status`` without TOKEN_CACHE_KEY: who signed in and when, from the unencrypted metadata. Exit 1."""
    path = settings.resolved_token_cache_path
    meta = CacheMetadata.load(path)
    now = datetime.now(UTC)
    print("mode:          delegated")
    if meta is None:
        print(f"account:       none (no sign-in recorded beside {path})")
    else:
        print(f"tenant:        {meta.tenant_id}")
        print(f"app (client):  {meta.client_id}")
        print(f"account:       {meta.username or '(no username)'} ({meta.home_account_id})")
        print(f"signed in:     {describe_time(utc_from_epoch(meta.login_at), now)}")
        print(f"last refresh:  {describe_time(utc_from_epoch(meta.last_refresh_at), now)}")
    print(
        f"problem:       the token cache {path} could not be opened: TOKEN_CACHE_KEY is not set (set it to the key "
        "the bot uses; without it nothing can be refreshed)"
    )
    return 1


def keygen_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print a new random TOKEN_CACHE_KEY (32 bytes, base64) on stdout; advice goes to stderr."""
    print(base64.b64encode(os.urandom(32)).decode("ascii"))
    print(
        "Set this as TOKEN_CACHE_KEY from a secret store (not next to the token cache); a new key needs a new "
        "migrate-bot login.",
        file=sys.stderr,
    )
    return 0
