"""What both MSAL credentials share: identity settings, the HTTP client, MSAL app construction, the pause.

After a failure that needs the operator, a credential stops asking the authority until something changes (a new
login) or a cool-down ends, so it never loops on a dead refresh token.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.config import Settings
from bot.credential.base import TransientCredentialError
from bot.credential.msal_transport import (
    NETWORK_ERRORS,
    MsalHttpClient,
    authority_url,
    build_http_client,
    instance_discovery_for,
    transient_network_error,
)
from bot.errors import CredentialError

log = logging.getLogger("bot.credential")  # one logger name for the whole credential


def utc_from_epoch(epoch: float | None) -> datetime | None:
    """A UTC datetime for a POSIX timestamp (``None`` stays ``None``)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


@dataclass
class _Failure:
    error: CredentialError
    at: float
    stamp: tuple


def _same_error(error: CredentialError) -> CredentialError:
    cls = type(error)
    return cls(str(error), code=error.code)


class MsalCredential:
    """What both modes share: identity settings, the HTTP client, MSAL app construction, the failure pause."""

    mode = ""

    def __init__(
        self, settings: Settings, *, http_client: Any, cooldown_seconds: float, clock: Callable[[], float]
    ) -> None:
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
            return factory(
                self.client_id,
                authority=self.authority,
                http_client=self._http,
                instance_discovery=self._instance_discovery,
                **kwargs,
            )
        except NETWORK_ERRORS as error:
            raise transient_network_error(self.authority, error) from None
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
        log.info(
            "not asking the authority again (code %s) until %s",
            failure.error.code,
            "a new login or the cool-down ends" if self.mode == "delegated" else "the cool-down ends",
        )
        raise _same_error(failure.error)

    def _remember(self, error: CredentialError, stamp: tuple = ()) -> CredentialError:
        if not isinstance(error, TransientCredentialError):
            self._failure = _Failure(error, self._clock(), stamp)
        return error

    def close(self) -> None:
        """Close the HTTP client, if this credential made it."""
        if self._owns_http and hasattr(self._http, "close"):
            self._http.close()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
