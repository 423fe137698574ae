"""The admin credential: where Graph access tokens come from.

- :class:`AdminCredential` (``GRAPH_AUTH_MODE=delegated``): the admin signs in once with ``migrate-bot login``
  (device code flow); the bot then only ever acquires tokens silently from the encrypted, shared token cache
  (:mod:`bot.token_cache`). Failures become a :class:`~bot.errors.CredentialError` whose message tells the operator
  what to do; after a failure that needs the operator, the credential stops asking the authority until a new
  login (or a cool-down) so it never loops on a dead refresh token.
- :class:`AppCredential` (``GRAPH_AUTH_MODE=application``): client credentials with a secret or a certificate.
- :func:`build_credential` picks one from the settings.

Tokens and MSAL result dicts are never logged; only error codes and correlation ids are.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import ssl
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Protocol
from urllib.parse import urlsplit

import httpx
import msal
import requests

from bot.config import Settings
from bot.errors import ConfigError, CredentialError
from bot.token_cache import (
    AesGcmFilePersistence,
    CacheMetadata,
    CacheUnreadable,
    SharedTokenCache,
    cache_unreadable_error,
)

log = logging.getLogger(__name__)

GRAPH_DELEGATED_SCOPE = "https://graph.microsoft.com/CrossTenantContentMigration.ReadWrite.All"
GRAPH_APPLICATION_SCOPE = "https://graph.microsoft.com/.default"
PUBLIC_CLOUD_HOST = "login.microsoftonline.com"
#: after a failure that needs the operator, silent calls are refused until a new login or this many seconds
DEFAULT_COOLDOWN_SECONDS = 3600.0
NO_ADMIN_MESSAGE = "no admin signed in: run migrate-bot login"


class TokenSource(Protocol):
    """Anything that hands out a Graph access token, acquiring it silently."""

    def token(self, *, claims_challenge: str | None = None) -> str:
        """Return a bearer token or raise :class:`bot.errors.CredentialError`."""
        ...


class StaticToken:
    """A fixed token: for the Graph simulator (demo, rehearsals, tests), never for real Graph."""

    def __init__(self, value: str = "simulator-token") -> None:
        self._value = value

    def token(self, *, claims_challenge: str | None = None) -> str:
        return self._value


class TransientCredentialError(CredentialError):
    """The authority could not be reached or is temporarily failing: retry later, no new login needed."""

    transient = True


# --------------------------------------------------------------------------------------------------------------
# Status


def _utc(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=timezone.utc)


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{seconds} s"
    elif seconds < 90 * 60:
        text = f"{round(seconds / 60)} min"
    elif seconds < 48 * 3600:
        text = f"{round(seconds / 3600)} h"
    else:
        text = f"{round(seconds / 86400)} days"
    return f"in {text}" if future else f"{text} ago"


def _when(moment: datetime | None, now: datetime, *, never: str = "never") -> str:
    if moment is None:
        return never
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC ({_ago(moment, now)})"


@dataclass(frozen=True)
class CredentialStatus:
    """What ``migrate-bot auth status`` shows. Holds no secret."""

    mode: str
    tenant_id: str
    client_id: str
    authority: str
    signed_in: bool = False
    username: str | None = None
    home_account_id: str | None = None
    has_refresh_token: bool = False
    access_token_expires_at: datetime | None = None
    last_refresh_at: datetime | None = None
    login_at: datetime | None = None
    credential_kind: str | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """True when the credential should be able to produce a token without the operator."""
        if self.problem is not None:
            return False
        return self.mode == "application" or (self.signed_in and self.has_refresh_token)

    def describe(self, now: datetime | None = None) -> list[str]:
        now = now or datetime.now(timezone.utc)
        lines = [
            f"mode:          {self.mode}",
            f"tenant:        {self.tenant_id}",
            f"app (client):  {self.client_id}",
            f"authority:     {self.authority}",
        ]
        if self.mode == "application":
            lines.append(f"credential:    {self.credential_kind or 'none'}")
        else:
            account = self.username or "(no username)"
            lines.append(f"account:       {account} ({self.home_account_id})" if self.signed_in else "account:       none")
            lines.append(f"refresh token: {'present' if self.has_refresh_token else 'missing'}")
            lines.append(f"signed in:     {_when(self.login_at, now)}")
            lines.append(f"last refresh:  {_when(self.last_refresh_at, now)}")
        if self.access_token_expires_at is None:
            lines.append("access token:  none cached")
        elif self.access_token_expires_at > now:
            lines.append(f"access token:  valid until {_when(self.access_token_expires_at, now)}")
        else:
            lines.append(f"access token:  expired {_when(self.access_token_expires_at, now)}")
        if self.problem:
            lines.append(f"problem:       {self.problem}")
        return lines


class Credential(TokenSource, Protocol):
    """A :class:`TokenSource` the bot can also report on and keep alive."""

    def status(self) -> CredentialStatus: ...

    def keep_alive(self) -> CredentialStatus: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------------------------------
# Authority and HTTP


def authority_url(settings: Settings) -> str:
    """``{AZURE_AUTHORITY_HOST}/{AZURE_TENANT_ID}``; MSAL only accepts https authorities."""
    host = settings.azure_authority_host.rstrip("/")
    if not host.startswith("https://"):
        raise ConfigError("AZURE_AUTHORITY_HOST: must be an https:// URL (MSAL refuses other authorities)")
    if settings.azure_tenant_id is None:
        raise ConfigError("AZURE_TENANT_ID: missing (the target tenant's Directory ID)")
    return f"{host}/{settings.azure_tenant_id}"


def instance_discovery_for(settings: Settings) -> bool | None:
    """MSAL's default (``None``) for Microsoft's public cloud; off for any other host (a test or private authority)."""
    return None if urlsplit(settings.azure_authority_host).hostname == PUBLIC_CLOUD_HOST else False


def build_http_client(settings: Settings) -> httpx.Client:
    """The httpx client MSAL talks to the authority through (trusting only AZURE_AUTHORITY_CA_BUNDLE when set)."""
    verify: ssl.SSLContext | bool = True
    bundle = settings.azure_authority_ca_bundle
    if bundle is not None:
        if not bundle.is_file():
            raise ConfigError("AZURE_AUTHORITY_CA_BUNDLE: no such file")
        try:
            verify = ssl.create_default_context(cafile=str(bundle))
        except ssl.SSLError:
            raise ConfigError("AZURE_AUTHORITY_CA_BUNDLE: not a PEM certificate bundle") from None
    return httpx.Client(verify=verify, timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=False)


class MsalHttpClient:
    """Adapts an ``httpx.Client`` to MSAL's ``http_client`` seam.

    Transport failures are re-raised as ``requests.exceptions.ConnectionError``: MSAL only recognises requests'
    exceptions as network errors (e.g. to fall back to a still-valid access token during an early refresh).
    """

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    @staticmethod
    def _form(data: dict) -> dict:
        # requests (MSAL's default transport) drops None values and sends bytes as-is; httpx would send ``claims=``
        # for None and ``b'...'`` for bytes (MSAL's client assertion is bytes).
        return {
            key: value.decode("utf-8") if isinstance(value, bytes) else value
            for key, value in data.items()
            if value is not None
        }

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        data = kwargs.get("data")
        if isinstance(data, (str, bytes)):
            kwargs["content"] = kwargs.pop("data")
        elif isinstance(data, dict):
            kwargs["data"] = self._form(data)
        if isinstance(kwargs.get("params"), dict):
            kwargs["params"] = self._form(kwargs["params"])
        try:
            return self._client.request(method, url, **kwargs)
        except httpx.TransportError as error:
            raise requests.exceptions.ConnectionError(
                f"{type(error).__name__} while contacting {urlsplit(url).netloc}"
            ) from error

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self._send("POST", url, params=params, data=data, headers=headers, **kwargs)

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self._send("GET", url, params=params, headers=headers, **kwargs)

    def close(self) -> None:
        self._client.close()


_NETWORK_ERRORS = (requests.exceptions.RequestException, httpx.HTTPError, msal.exceptions.MsalServiceError)


def _transient_network_error(authority: str, error: BaseException) -> TransientCredentialError:
    log.warning("authority %s unreachable or failing: %s", authority, type(error).__name__)
    return TransientCredentialError(
        f"Microsoft Entra ID ({urlsplit(authority).netloc}) could not be reached or answered with a server error "
        f"({type(error).__name__}); the bot will retry, no new login is needed.",
        code="transient",
    )


# --------------------------------------------------------------------------------------------------------------
# MSAL errors -> sentences


def _codes(result: dict) -> set[int]:
    codes = set()
    for code in result.get("error_codes") or []:
        try:
            codes.add(int(code))
        except (TypeError, ValueError):
            continue
    return codes


def _tag(result: dict) -> str:
    codes = ", ".join(f"AADSTS{c}" for c in sorted(_codes(result))) or str(result.get("error") or "unknown error")
    correlation = result.get("correlation_id")
    return f"{codes}, correlation id {correlation}" if correlation else codes


def explain_error(result: dict, *, mode: str = "delegated") -> CredentialError:
    """Map an MSAL error dict to a :class:`CredentialError` that says what the operator must do."""
    error = str(result.get("error") or "")
    codes = _codes(result)
    tag = _tag(result)
    relogin = "run migrate-bot login"

    def err(code: str, text: str) -> CredentialError:
        return CredentialError(f"{text} ({tag})", code=code)

    if error in {"temporarily_unavailable", "server_error"}:
        return TransientCredentialError(
            f"Microsoft Entra ID is temporarily unavailable ({tag}); the bot will retry, no new login is needed.",
            code="transient",
        )
    if codes & {700082, 70008}:
        return err("session_expired", f"The admin's session expired from inactivity: {relogin}.")
    if 50173 in codes:
        return err("sessions_revoked",
                   "The admin's sessions were revoked (password change or reset, or an admin revoked sessions): "
                   f"{relogin}.")
    if 70043 in codes:
        return err("sign_in_frequency", f"The tenant's Conditional Access sign-in frequency requires a new sign-in: {relogin}.")
    if codes & {65001} or result.get("suberror") == "consent_required" or error == "consent_required":
        return err("consent_required",
                   "Consent for CrossTenantContentMigration.ReadWrite.All is missing: a tenant administrator must "
                   "grant consent to the app registration" + (f", then {relogin}." if mode == "delegated" else "."))
    if codes & {50076, 50079, 50074, 53003} or error == "interaction_required":
        return err("interaction_required",
                   "The admin's sign-in needs MFA or is blocked by Conditional Access: "
                   f"{relogin} and complete MFA, or ask a tenant administrator to review the policy.")
    if 50057 in codes:
        return err("account_unusable", f"The admin account is disabled: enable it or sign in with another admin ({relogin}).")
    if 50126 in codes:
        return err("account_unusable", f"The admin account's credentials were refused: {relogin}.")
    if 7000218 in codes:
        return err("client_type",
                   "The app registration does not allow public client flows: set 'Allow public client flows' to Yes "
                   "in the app registration (Authentication > Advanced settings), or use GRAPH_AUTH_MODE=application.")
    if 700025 in codes:
        return err("client_type",
                   "The app registration is a public client but a client secret was sent: delegated mode needs "
                   "no AZURE_CLIENT_SECRET.")
    if 50196 in codes:
        return err("loop_detected",
                   "Microsoft Entra ID detected a request loop; the bot paused token requests. "
                   f"If this persists, {relogin}.")
    if codes & {7000215, 7000222}:
        return err("client_credential",
                   "The client secret was refused (wrong or expired): set AZURE_CLIENT_SECRET to a current secret of "
                   "the app registration.")
    if codes & {700027, 700024, 7000274}:
        return err("client_credential",
                   "The client certificate assertion was refused: upload the certificate from "
                   "AZURE_CLIENT_CERTIFICATE_PATH to the app registration, or renew it.")
    if codes & {700016, 7000112}:
        return err("client_not_found",
                   "The app registration AZURE_CLIENT_ID was not found or is disabled in tenant AZURE_TENANT_ID.")
    if codes & {90002, 90072}:
        return err("tenant_not_found", "Tenant AZURE_TENANT_ID was not found or the account is not part of it.")
    if error == "invalid_grant":
        return err("invalid_grant", f"The admin's refresh token was refused: {relogin}.")
    if error in {"invalid_client", "unauthorized_client"}:
        return err(error, "The app registration refused this client: check AZURE_CLIENT_ID and its credentials.")
    if mode == "delegated":
        return err(error or "unknown", f"Token acquisition failed: {relogin}; if it persists, check the app registration.")
    return err(error or "unknown", "Token acquisition failed: check the app registration and its credentials.")


def _log_failure(what: str, result: dict) -> None:
    log.warning(
        "%s failed: error=%s codes=%s correlation_id=%s trace_id=%s",
        what, result.get("error"), sorted(_codes(result)), result.get("correlation_id"), result.get("trace_id"),
    )


def normalize_claims_challenge(challenge: str | None) -> str | None:
    """Graph's ``claims=`` value is base64 JSON; MSAL wants the JSON string. Accept either."""
    if challenge is None or not challenge.strip():
        return None
    text = challenge.strip()
    if not text.startswith("{"):
        try:
            text = base64.urlsafe_b64decode(
                text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
            ).decode("utf-8")
        except (binascii.Error, ValueError):
            raise CredentialError("The claims challenge from Graph is neither JSON nor base64 JSON.",
                                  code="bad_claims_challenge") from None
    try:
        json.loads(text)
    except ValueError:
        raise CredentialError("The claims challenge from Graph is neither JSON nor base64 JSON.",
                              code="bad_claims_challenge") from None
    return text


def _b64url_json(part: str) -> dict:
    part = part.rstrip("=")
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _scope_names(scope: str) -> set[str]:
    return {item.rsplit("/", 1)[-1].lower() for item in scope.split()}


@dataclass
class _Failure:
    error: CredentialError
    at: float
    stamp: tuple


def _same_error(error: CredentialError) -> CredentialError:
    cls = type(error)
    return cls(str(error), code=error.code)


class _MsalCredential:
    """What both modes share: identity settings, the HTTP client, MSAL app construction, the failure pause."""

    mode = ""

    def __init__(self, settings: Settings, *, http_client: Any, cooldown_seconds: float,
                 clock: Callable[[], float]) -> None:
        if settings.azure_tenant_id is None or settings.azure_client_id is None:
            settings.require_graph_credential()  # names the missing variable
        self.tenant_id = str(settings.azure_tenant_id).lower()
        self.client_id = str(settings.azure_client_id).lower()
        self.authority = authority_url(settings)
        self._instance_discovery = instance_discovery_for(settings)
        self._owns_http = http_client is None
        raw = build_http_client(settings) if http_client is None else http_client
        self._http = MsalHttpClient(raw) if isinstance(raw, httpx.Client) else raw
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._lock = threading.RLock()
        self._failure: _Failure | None = None

    def _new_msal_app(self, factory: Callable[..., Any], **kwargs: Any) -> Any:
        """Build the MSAL app (this runs OpenID discovery against the authority)."""
        try:
            return factory(self.client_id, authority=self.authority, http_client=self._http,
                           instance_discovery=self._instance_discovery, **kwargs)
        except _NETWORK_ERRORS as error:
            raise _transient_network_error(self.authority, error) from None
        except ValueError:
            raise CredentialError(
                f"The authority {self.authority} did not answer OpenID discovery: check AZURE_TENANT_ID and "
                "AZURE_AUTHORITY_HOST.",
                code="authority",
            ) from None

    def _paused(self, stamp: tuple = ()) -> None:
        """Re-raise the last failure that needs the operator, unless ``stamp`` moved on or the cool-down ended."""
        failure = self._failure
        if failure is None:
            return
        if failure.stamp != stamp or self._clock() >= failure.at + self._cooldown:
            self._failure = None
            return
        log.info("not asking the authority again (code %s) until %s", failure.error.code,
                 "a new login or the cool-down ends" if self.mode == "delegated" else "the cool-down ends")
        raise _same_error(failure.error)

    def _remember(self, error: CredentialError, stamp: tuple = ()) -> CredentialError:
        if not isinstance(error, TransientCredentialError):
            self._failure = _Failure(error, self._clock(), stamp)
        return error

    def close(self) -> None:
        if self._owns_http and hasattr(self._http, "close"):
            self._http.close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------------------------------------------
# Delegated: the signed-in admin


class AdminCredential(_MsalCredential):
    """The admin's delegated credential, held in the encrypted token cache shared by the CLI and the bot."""

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
        self._persistence = AesGcmFilePersistence(self.cache_path, key)
        self._cache: SharedTokenCache | None = None
        self._app: msal.PublicClientApplication | None = None

    # -- plumbing ------------------------------------------------------------------------------------------------

    def _token_cache(self) -> SharedTokenCache:
        if self._cache is None:
            self._cache = SharedTokenCache(self._persistence)
        return self._cache

    def _msal_app(self) -> msal.PublicClientApplication:
        if self._app is None:
            self._app = self._new_msal_app(msal.PublicClientApplication, token_cache=self._token_cache())
        return self._app

    def _metadata(self) -> CacheMetadata:
        meta = CacheMetadata.load(self.cache_path)
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
        with self._token_cache().lock():
            meta = CacheMetadata.load(self.cache_path)
            if meta is None or meta.home_account_id != home_account_id:
                return
            meta.last_refresh_at = self._clock()
            meta.save(self.cache_path)

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
            except _NETWORK_ERRORS as error:
                raise _transient_network_error(self.authority, error) from None
            if result is None:
                raise CredentialError(NO_ADMIN_MESSAGE, code="no_account")
            if "error" in result:
                _log_failure("admin token refresh", result)
                raise self._remember(explain_error(result), self._stamp(meta))
            tid = (result.get("id_token_claims") or {}).get("tid")
            if tid is not None and str(tid).lower() != self.tenant_id:
                raise self._remember(CredentialError(
                    f"the admin's refreshed token is for tenant {tid}, not AZURE_TENANT_ID {self.tenant_id}: "
                    "run migrate-bot login", code="tenant_mismatch"), self._stamp(meta))
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
        """Raise the wrong-key :class:`CredentialError` if the cache file exists and does not decrypt."""
        try:
            self._persistence.load()
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
                    _log_failure("device code request", flow)
                    raise explain_error(flow)
                show(flow["message"])
                result = app.acquire_token_by_device_flow(flow)
            except CacheUnreadable as error:
                raise cache_unreadable_error(error) from None
            except _NETWORK_ERRORS as error:
                raise _transient_network_error(self.authority, error) from None
            if "error" in result:
                _log_failure("device code sign-in", result)
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
        with self._token_cache().lock():
            CacheMetadata(
                home_account_id=home_account_id,
                username=claims.get("preferred_username"),
                tenant_id=self.tenant_id,
                client_id=self.client_id,
                authority=self.authority,
                login_at=now,
                last_refresh_at=now,
            ).save(self.cache_path)
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

    def logout(self) -> list[Path]:
        """Forget the admin: delete the cache and its metadata. Returns the files removed."""
        with self._lock:
            removed = forget_admin(self.cache_path)
            self._app = None
            self._cache = None
            self._failure = None
            return removed

    # -- status --------------------------------------------------------------------------------------------------

    def status(self) -> CredentialStatus:
        """Account, tenant, mode and token freshness, read from disk without contacting the authority."""
        base = CredentialStatus(mode=self.mode, tenant_id=self.tenant_id, client_id=self.client_id,
                                authority=self.authority)
        failure = self._failure
        problem = str(failure.error) if failure is not None else None
        try:
            meta = self._metadata()
        except CredentialError as error:
            return replace(base, problem=str(error))
        base = replace(base, signed_in=True, username=meta.username, home_account_id=meta.home_account_id,
                       login_at=_utc(meta.login_at), last_refresh_at=_utc(meta.last_refresh_at), problem=problem)
        try:
            state = json.loads(self._persistence.load())
        except CacheUnreadable as error:
            return replace(base, problem=str(cache_unreadable_error(error)))
        except OSError:
            return replace(base, signed_in=False, problem=f"token cache {self.cache_path} is missing: run migrate-bot login")
        mine = [entry for entry in (state.get("RefreshToken") or {}).values()
                if entry.get("home_account_id") == meta.home_account_id]
        expiries = [int(entry["expires_on"]) for entry in (state.get("AccessToken") or {}).values()
                    if entry.get("home_account_id") == meta.home_account_id and entry.get("expires_on")]
        accounts = [entry for entry in (state.get("Account") or {}).values()
                    if entry.get("home_account_id") == meta.home_account_id]
        if not accounts:
            return replace(base, signed_in=False, problem=NO_ADMIN_MESSAGE)
        return replace(
            base,
            username=accounts[0].get("username") or meta.username,
            has_refresh_token=bool(mine),
            access_token_expires_at=_utc(max(expiries)) if expiries else None,
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


# --------------------------------------------------------------------------------------------------------------
# Application: client credentials


@dataclass(frozen=True)
class ClientCertificate:
    """A certificate credential read from a PEM holding the private key and the certificate."""

    private_key_pem: str = ""
    thumbprint_sha1: str = ""
    thumbprint_sha256: str = ""
    subject: str = ""
    not_after: datetime | None = None

    def __repr__(self) -> str:  # never print the key
        return f"ClientCertificate(subject={self.subject!r}, thumbprint_sha1={self.thumbprint_sha1!r})"

    def msal_credential(self) -> dict:
        return {"private_key": self.private_key_pem, "thumbprint": self.thumbprint_sha1}


def load_client_certificate(path: Path) -> ClientCertificate:
    """Read a PEM file with a private key and its certificate; the SHA-1 thumbprint is what Entra's ``x5t`` names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    try:
        data = Path(path).read_bytes()
    except OSError:
        raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH: cannot be read") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH: no PEM certificate in the file") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH: the private key is encrypted; store it unencrypted "
                          "(mode 0600) or use a secret store") from None
    except ValueError:
        raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH: no unencrypted PEM private key in the file") from None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    public = key.public_key().public_bytes(serialization.Encoding.DER, spki)
    matching = [c for c in certificates if c.public_key().public_bytes(serialization.Encoding.DER, spki) == public]
    if not matching:
        raise ConfigError("AZURE_CLIENT_CERTIFICATE_PATH: the certificate does not match the private key")
    cert = matching[0]
    return ClientCertificate(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii"),
        thumbprint_sha1=cert.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303 - Entra's x5t is SHA-1
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
    )


class AppCredential(_MsalCredential):
    """App-only Graph tokens (``GRAPH_AUTH_MODE=application``) with a certificate (preferred) or a client secret."""

    mode = "application"
    scopes = [GRAPH_APPLICATION_SCOPE]

    def __init__(
        self,
        settings: Settings,
        *,
        http_client: httpx.Client | Any = None,
        cooldown_seconds: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.certificate: ClientCertificate | None = None
        if settings.azure_client_certificate_path is not None:
            self.certificate = load_client_certificate(settings.azure_client_certificate_path)
            self._client_credential: Any = self.certificate.msal_credential()
        elif settings.azure_client_secret is not None:
            self._client_credential = settings.azure_client_secret.get_secret_value()
        else:
            raise ConfigError("AZURE_CLIENT_SECRET: missing (application mode needs it or AZURE_CLIENT_CERTIFICATE_PATH)")
        super().__init__(settings, http_client=http_client, cooldown_seconds=cooldown_seconds, clock=clock)
        self._app: msal.ConfidentialClientApplication | None = None

    @property
    def credential_kind(self) -> str:
        if self.certificate is not None:
            return f"certificate {self.certificate.thumbprint_sha1} ({self.certificate.subject})"
        return "client secret"

    def _msal_app(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            self._app = self._new_msal_app(msal.ConfidentialClientApplication,
                                           client_credential=self._client_credential, token_cache=msal.TokenCache())
        return self._app

    def token(self, *, claims_challenge: str | None = None) -> str:
        claims = normalize_claims_challenge(claims_challenge)
        with self._lock:
            self._paused()
            try:
                result = self._msal_app().acquire_token_for_client(self.scopes, claims_challenge=claims)
            except _NETWORK_ERRORS as error:
                raise _transient_network_error(self.authority, error) from None
            if "error" in result:
                _log_failure("app token request", result)
                raise self._remember(explain_error(result, mode=self.mode))
            return result["access_token"]

    def keep_alive(self) -> CredentialStatus:
        """App-only tokens need no keep-alive; this just proves a token can be had."""
        self.token()
        return self.status()

    def status(self) -> CredentialStatus:
        problem = str(self._failure.error) if self._failure is not None else None
        if self.certificate is not None and self.certificate.not_after is not None:
            if self.certificate.not_after <= datetime.now(timezone.utc):
                problem = f"the certificate in AZURE_CLIENT_CERTIFICATE_PATH expired on {self.certificate.not_after:%Y-%m-%d}"
        expiry = None
        if self._app is not None:
            entries = self._app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN,
                                                   query={"client_id": self.client_id})
            expiries = [int(entry["expires_on"]) for entry in entries if entry.get("expires_on")]
            expiry = _utc(max(expiries)) if expiries else None
        return CredentialStatus(
            mode=self.mode, tenant_id=self.tenant_id, client_id=self.client_id, authority=self.authority,
            credential_kind=self.credential_kind, access_token_expires_at=expiry, problem=problem,
        )


def build_credential(settings: Settings, *, http_client: httpx.Client | Any = None) -> Credential:
    """The credential for ``GRAPH_AUTH_MODE``; raises :class:`ConfigError` when it is not configured."""
    settings.require_graph_credential()
    if settings.graph_auth_mode == "application":
        return AppCredential(settings, http_client=http_client)
    return AdminCredential(settings, http_client=http_client)
