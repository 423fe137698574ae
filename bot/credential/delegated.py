"""The admin's delegated credential (``GRAPH_AUTH_MODE=delegated``).

The admin signs in once with ``migrate-bot login`` (device code flow); the bot then only ever acquires tokens
silently from the encrypted, shared token cache (:mod:`bot.credential.token_cache`). Failures become a
:class:`~bot.errors.CredentialError` whose message tells the operator what to do; after a failure that needs the
operator, the credential stops asking the authority until a new login (or a cool-down).
"""

from __future__ import annotations

import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import msal

from bot.config import Settings
from bot.credential.base import GRAPH_DELEGATED_SCOPE, CredentialStatus
from bot.credential.cache_store import CacheStore, FileCacheStore
from bot.credential.db_cache import DbCacheStore
from bot.credential.msal_app import MsalCredential, utc_from_epoch
from bot.credential.msal_errors import explain_error, log_failure, normalize_claims_challenge
from bot.credential.msal_transport import NETWORK_ERRORS, transient_network_error
from bot.credential.token_cache import (
    CacheMetadata,
    CacheUnreadable,
    cache_unreadable_error,
)
from bot.encoding import b64url_decode
from bot.errors import ConfigError, CredentialError
from bot.store import create_db_engine, migrate_schema

log = logging.getLogger("bot.credential")  # one logger name for the whole credential

#: after a failure that needs the operator, silent calls are refused until a new login or this many seconds
DEFAULT_COOLDOWN_SECONDS = 3600.0
NO_ADMIN_MESSAGE = "no admin signed in: run migrate-bot login"


def _b64url_json(part: str) -> dict:
    return json.loads(b64url_decode(part))


def _scope_names(scope: str) -> set[str]:
    return {item.rsplit("/", 1)[-1].lower() for item in scope.split()}


class AdminCredential(MsalCredential):
    """The admin's delegated credential, held in the encrypted token cache shared by the CLI and the bot: a file
    next to a SQLite database, the ``token_cache`` row of a PostgreSQL one (shared by every replica)."""

    mode = "delegated"
    scopes = [GRAPH_DELEGATED_SCOPE]

    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx.Client | Any = None,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        key = settings.cache_key_bytes
        if key is None:
            raise ConfigError("TOKEN_CACHE_KEY: missing (32 random bytes in base64; make one with: migrate-bot keygen)")
        super().__init__(settings, http_client=http_client, cooldown_seconds=cooldown_seconds, clock=clock)
        self.cache_path = Path(settings.resolved_token_cache_path)
        self._engine = None
        self._store: CacheStore
        if settings.resolved_database_url.startswith("postgresql"):
            self._engine = create_db_engine(settings.resolved_database_url)
            migrate_schema(self._engine)
            self._store = DbCacheStore(self._engine, key)
        else:
            self._store = FileCacheStore(self.cache_path, key)
        self._app: msal.PublicClientApplication | None = None

    @property
    def cache_location(self) -> str:
        """Where the encrypted cache lives (a file, or the database table), for the operator."""
        return self._store.location

    # -- plumbing ------------------------------------------------------------------------------------------------

    def close(self) -> None:
        super().close()
        if self._engine is not None:
            self._engine.dispose()

    def _msal_app(self) -> msal.PublicClientApplication:
        if self._app is None:
            self._app = self._new_msal_app(msal.PublicClientApplication, token_cache=self._store.token_cache())
        return self._app

    def _metadata(self) -> CacheMetadata:
        meta = self._store.load_meta()
        if meta is None:
            raise CredentialError(NO_ADMIN_MESSAGE, code="no_account")
        if meta.tenant_id.lower() != self.tenant_id or meta.client_id.lower() != self.client_id:
            raise CredentialError(
                f"the signed-in admin belongs to tenant {meta.tenant_id} / app {meta.client_id}, not the configured "
                "AZURE_TENANT_ID / AZURE_CLIENT_ID: run migrate-bot login",
                code="no_account",
            )
        return meta

    @staticmethod
    def _stamp(meta: CacheMetadata) -> tuple:
        """Changes with a new login (or a successful refresh by another process): then the pause ends."""
        return (meta.home_account_id, meta.login_at, meta.last_refresh_at)

    def _account(self, app: msal.PublicClientApplication, home_account_id: str) -> dict | None:
        for account in app.get_accounts():
            if account.get("home_account_id") == home_account_id:
                return account
        return None

    def _record_refresh(self, home_account_id: str) -> None:
        with self._store.lock():
            meta = self._store.load_meta()
            if meta is None or meta.home_account_id != home_account_id:
                return
            meta.last_refresh_at = self._clock()
            self._store.save_meta(meta)

    # -- silent acquisition --------------------------------------------------------------------------------------

    def _acquire(self, *, force_refresh: bool = False, claims_challenge: str | None = None) -> dict:
        with self._lock:
            meta = self._metadata()
            self._paused(self._stamp(meta))
            try:
                app = self._msal_app()
                account = self._account(app, meta.home_account_id)
                if account is None:
                    raise CredentialError(NO_ADMIN_MESSAGE, code="no_account")
                result = app.acquire_token_silent_with_error(
                    self.scopes, account, force_refresh=force_refresh, claims_challenge=claims_challenge
                )
            except CacheUnreadable as error:
                raise cache_unreadable_error(error) from None
            except NETWORK_ERRORS as error:
                raise transient_network_error(self.authority, error) from None
            if result is None:
                raise CredentialError(NO_ADMIN_MESSAGE, code="no_account")
            if "error" in result:
                log_failure("admin token refresh", result)
                raise self._remember(explain_error(result), self._stamp(meta))
            tid = (result.get("id_token_claims") or {}).get("tid")
            if tid is not None and str(tid).lower() != self.tenant_id:
                raise self._remember(
                    CredentialError(
                        f"the admin's refreshed token is for tenant {tid}, not AZURE_TENANT_ID {self.tenant_id}: "
                        "run migrate-bot login",
                        code="tenant_mismatch",
                    ),
                    self._stamp(meta),
                )
            if result.get("token_source") == "identity_provider":
                self._record_refresh(meta.home_account_id)
                log.info("admin token refreshed (expires_in=%s)", result.get("expires_in"))
            self._failure = None
            return result

    def token(self, *, claims_challenge: str | None = None) -> str:
        """A Graph access token for the admin, from the cache or by redeeming the refresh token. Never prompts."""
        return self._acquire(claims_challenge=normalize_claims_challenge(claims_challenge))["access_token"]

    def keep_alive(self) -> CredentialStatus:
        """Redeem the refresh token now (restarting Entra's 90-day inactivity window); run once a day."""
        self._acquire(force_refresh=True)
        return self.status()

    # -- login / logout ------------------------------------------------------------------------------------------

    def check_cache_readable(self) -> None:
        """Raise the wrong-key :class:`CredentialError` if the cache exists and does not decrypt."""
        try:
            self._store.load_text()
        except CacheUnreadable as error:
            raise cache_unreadable_error(error) from None
        except OSError:  # no file yet (PersistenceNotFound): nothing to protect
            pass

    def login(self, *, show: Callable[[str], None] = print) -> CredentialStatus:
        """Sign the admin in with the device code flow; ``show`` gets the URL + code for the operator.

        Afterwards the account must belong to AZURE_TENANT_ID (else it is removed and the login refused); it becomes
        the only account in the cache and its ``home_account_id`` is recorded.
        """
        with self._lock:
            self.check_cache_readable()
            try:
                app = self._msal_app()
                flow = app.initiate_device_flow(scopes=self.scopes)
                if "user_code" not in flow:
                    log_failure("device code request", flow)
                    raise explain_error(flow)
                show(flow["message"])
                result = app.acquire_token_by_device_flow(flow)
            except CacheUnreadable as error:
                raise cache_unreadable_error(error) from None
            except NETWORK_ERRORS as error:
                raise transient_network_error(self.authority, error) from None
            if "error" in result:
                log_failure("device code sign-in", result)
                if result.get("error") in {"authorization_declined", "expired_token", "bad_verification_code"}:
                    raise CredentialError(
                        f"The sign-in did not complete ({result['error']}): run migrate-bot login again.",
                        code=str(result["error"]),
                    )
                raise explain_error(result)
            self._accept_login(app, result)
            return self.status()

    def _accept_login(self, app: msal.PublicClientApplication, result: dict) -> None:
        claims = result.get("id_token_claims") or {}
        home_account_id = self._home_account_id(app, result, claims)
        tid = str(claims.get("tid") or "").lower()
        if tid != self.tenant_id:
            self._remove_accounts(app, keep=None, only=home_account_id)
            raise CredentialError(
                f"the account signed in to tenant {tid or 'unknown'}, but AZURE_TENANT_ID is {self.tenant_id}: "
                f"it was removed. Run migrate-bot login again and sign in with an administrator of {self.tenant_id}.",
                code="tenant_mismatch",
            )
        if "scope" in result and "crosstenantcontentmigration.readwrite.all" not in _scope_names(result["scope"]):
            self._remove_accounts(app, keep=None, only=home_account_id)
            raise CredentialError(
                "the sign-in succeeded but the token does not carry CrossTenantContentMigration.ReadWrite.All: "
                "grant that delegated permission (with consent) to the app registration, then run migrate-bot login.",
                code="consent_required",
            )
        self._remove_accounts(app, keep=home_account_id)
        now = self._clock()
        with self._store.lock():
            self._store.save_meta(
                CacheMetadata(
                    home_account_id=home_account_id,
                    username=claims.get("preferred_username"),
                    tenant_id=self.tenant_id,
                    client_id=self.client_id,
                    authority=self.authority,
                    login_at=now,
                    last_refresh_at=now,
                )
            )
        self._failure = None
        log.info("admin signed in (tenant %s)", self.tenant_id)

    @staticmethod
    def _home_account_id(app: msal.PublicClientApplication, result: dict, claims: dict) -> str | None:
        client_info = result.get("client_info")
        if client_info:
            try:
                info = _b64url_json(client_info)
                return f"{info['uid']}.{info['utid']}"
            except (ValueError, KeyError, binascii.Error):
                pass
        for account in app.get_accounts():
            if account.get("local_account_id") == claims.get("oid") and claims.get("oid"):
                return account.get("home_account_id")
        return None

    @staticmethod
    def _remove_accounts(app: msal.PublicClientApplication, *, keep: str | None, only: str | None = None) -> None:
        for account in app.get_accounts():
            hid = account.get("home_account_id")
            if hid == keep or (only is not None and hid != only):
                continue
            app.remove_account(account)

    def logout(self) -> list[Path | str]:
        """Forget the admin: delete the cache and its metadata. Returns what was removed."""
        with self._lock:
            removed = self._store.forget()
            self._app = None
            self._failure = None
            return removed

    # -- status --------------------------------------------------------------------------------------------------

    def status(self) -> CredentialStatus:
        """Account, tenant, mode and token freshness, read from disk without contacting the authority."""
        base = CredentialStatus(
            mode=self.mode, tenant_id=self.tenant_id, client_id=self.client_id, authority=self.authority
        )
        failure = self._failure
        problem = str(failure.error) if failure is not None else None
        try:
            meta = self._metadata()
        except CredentialError as error:
            return replace(base, problem=str(error))
        base = replace(
            base,
            signed_in=True,
            username=meta.username,
            home_account_id=meta.home_account_id,
            login_at=utc_from_epoch(meta.login_at),
            last_refresh_at=utc_from_epoch(meta.last_refresh_at),
            problem=problem,
        )
        try:
            state = json.loads(self._store.load_text())
        except CacheUnreadable as error:
            return replace(base, problem=str(cache_unreadable_error(error)))
        except OSError:
            return replace(base, signed_in=False, problem="the token cache file is missing: run migrate-bot login")
        mine = [
            entry
            for entry in (state.get("RefreshToken") or {}).values()
            if entry.get("home_account_id") == meta.home_account_id
        ]
        expiries = [
            int(entry["expires_on"])
            for entry in (state.get("AccessToken") or {}).values()
            if entry.get("home_account_id") == meta.home_account_id and entry.get("expires_on")
        ]
        accounts = [
            entry
            for entry in (state.get("Account") or {}).values()
            if entry.get("home_account_id") == meta.home_account_id
        ]
        if not accounts:
            return replace(base, signed_in=False, problem=NO_ADMIN_MESSAGE)
        return replace(
            base,
            username=accounts[0].get("username") or meta.username,
            has_refresh_token=bool(mine),
            access_token_expires_at=utc_from_epoch(max(expiries)) if expiries else None,
        )


def forget_admin(cache_path: Path) -> list[Path]:
    """Delete the token cache and its metadata (no key needed: this is how to start over). Returns what was removed."""
    cache_path = Path(cache_path)
    removed: list[Path] = []
    for path in (cache_path, CacheMetadata.path_for(cache_path)):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    return removed
