"""How MSAL reaches Microsoft Entra ID: the authority URL, the httpx transport, network errors.

MSAL only recognises ``requests``' exceptions as network errors; :class:`MsalHttpClient` translates httpx's, and
:func:`transient_network_error` turns any of :data:`NETWORK_ERRORS` into a retry-later credential error.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal
import requests

from bot.config import Settings
from bot.credential.base import TransientCredentialError
from bot.errors import ConfigError

log = logging.getLogger("bot.credential")  # one logger name for the whole credential

PUBLIC_CLOUD_HOST = "login.microsoftonline.com"


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

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> httpx.Response:
        return self._send("POST", url, params=params, data=data, headers=headers, **kwargs)

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self._send("GET", url, params=params, headers=headers, **kwargs)

    def close(self) -> None:
        self._client.close()


#: what MSAL raises when the authority is unreachable or failing (an OAuth error answer is a dict instead)
NETWORK_ERRORS = (requests.exceptions.RequestException, httpx.HTTPError, msal.exceptions.MsalServiceError)


def transient_network_error(authority: str, error: BaseException) -> TransientCredentialError:
    """Log the failure (its type only) and say that the bot will retry; no new login is needed."""
    log.warning("authority %s unreachable or failing: %s", authority, type(error).__name__)
    return TransientCredentialError(
        f"Microsoft Entra ID ({urlsplit(authority).netloc}) could not be reached or answered with a server error "
        f"({type(error).__name__}); the bot will retry, no new login is needed.",
        code="transient",
    )
