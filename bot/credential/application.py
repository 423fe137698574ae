"""App-only Graph tokens (``GRAPH_AUTH_MODE=application``): client credentials with a certificate or a secret."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msal

from bot.config import Settings
from bot.credential.base import GRAPH_APPLICATION_SCOPE, CredentialStatus
from bot.credential.msal_app import MsalCredential, utc_from_epoch
from bot.credential.msal_errors import explain_error, log_failure, normalize_claims_challenge
from bot.credential.msal_transport import NETWORK_ERRORS, transient_network_error
from bot.errors import ConfigError


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
        raise ConfigError(
            "AZURE_CLIENT_CERTIFICATE_PATH: the private key is encrypted; store it unencrypted "
            "(mode 0600) or use a secret store"
        ) from None
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
        thumbprint_sha1=cert.fingerprint(hashes.SHA1()).hex().upper(),
        thumbprint_sha256=cert.fingerprint(hashes.SHA256()).hex().upper(),
        subject=cert.subject.rfc4514_string(),
        not_after=cert.not_valid_after_utc,
    )


class AppCredential(MsalCredential):
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
            raise ConfigError(
                "AZURE_CLIENT_SECRET: missing (application mode needs it or AZURE_CLIENT_CERTIFICATE_PATH)"
            )
        super().__init__(settings, http_client=http_client, cooldown_seconds=cooldown_seconds, clock=clock)
        self._app: msal.ConfidentialClientApplication | None = None

    @property
    def credential_kind(self) -> str:
        if self.certificate is not None:
            return f"certificate {self.certificate.thumbprint_sha1} ({self.certificate.subject})"
        return "client secret"

    def _msal_app(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            self._app = self._new_msal_app(
                msal.ConfidentialClientApplication,
                client_credential=self._client_credential,
                token_cache=msal.TokenCache(),
            )
        return self._app

    def token(self, *, claims_challenge: str | None = None) -> str:
        claims = normalize_claims_challenge(claims_challenge)
        with self._lock:
            self._paused()
            try:
                result = self._msal_app().acquire_token_for_client(self.scopes, claims_challenge=claims)
            except NETWORK_ERRORS as error:
                raise transient_network_error(self.authority, error) from None
            if "error" in result:
                log_failure("app token request", result)
                raise self._remember(explain_error(result, mode=self.mode))
            return result["access_token"]

    def keep_alive(self) -> CredentialStatus:
        """App-only tokens need no keep-alive; this just proves a token can be had."""
        self.token()
        return self.status()

    def status(self) -> CredentialStatus:
        problem = str(self._failure.error) if self._failure is not None else None
        if self.certificate is not None and self.certificate.not_after is not None:
            if self.certificate.not_after <= datetime.now(UTC):
                problem = (
                    f"the certificate in AZURE_CLIENT_CERTIFICATE_PATH expired on {self.certificate.not_after:%Y-%m-%d}"
                )
        expiry = None
        if self._app is not None:
            entries = self._app.token_cache.search(
                msal.TokenCache.CredentialType.ACCESS_TOKEN, query={"client_id": self.client_id}
            )
            expiries = [int(entry["expires_on"]) for entry in entries if entry.get("expires_on")]
            expiry = utc_from_epoch(max(expiries)) if expiries else None
        return CredentialStatus(
            mode=self.mode,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            authority=self.authority,
            credential_kind=self.credential_kind,
            access_token_expires_at=expiry,
            problem=problem,
        )
