"""A fake Microsoft Entra ID authority: real HTTPS on loopback, scriptable, counting what it is asked.

It serves, for any tenant segment ``<t>``:

- ``GET  /<t>/v2.0/.well-known/openid-configuration`` (what MSAL's ``authority=`` discovery reads),
- ``POST /<t>/oauth2/v2.0/devicecode``,
- ``POST /<t>/oauth2/v2.0/token`` for the ``device_code``, ``refresh_token`` and ``client_credentials`` grants.

Responses follow Entra's shapes: ``client_info`` (base64url ``{"uid","utid"}``), an unsigned ``id_token`` with
``tid``/``oid``/``preferred_username``/``aud``, rotating refresh tokens, and OAuth error bodies with ``error_codes``.
Where it is simpler than Entra (it says so): no signatures on id tokens, device codes are approved at once (after
``pending_polls`` ``authorization_pending`` answers), any tenant GUID in the path is accepted, and the ``scope``
echoed back is the requested one minus the reserved OIDC scopes.

The TLS certificate is issued at start-up by a throw-away CA (``ca_bundle`` holds its PEM) for 127.0.0.1/localhost.

The fixtures at the end (one server per test module, a fresh cache key, the credential's environment) are imported
by the modules that need them: ``from tests.support.fake_authority import authority, shared_authority  # noqa: F401``
(pytest finds a fixture's own fixtures in the importing module, so import those it needs too).
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import hashlib
import ipaddress
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bot.config import setting_names
from bot.httpserver import WSGIServer

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RESERVED_SCOPES = {"openid", "profile", "offline_access"}

DESCRIPTIONS = {
    700082: "The refresh token has expired due to inactivity.",
    70008: "The provided authorization code or refresh token has expired due to inactivity.",
    50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
    70043: "The refresh token has expired or is invalid due to sign-in frequency checks by conditional access.",
    50076: "Due to a configuration change made by your administrator, you must use multi-factor authentication.",
    65001: "The user or administrator has not consented to use the application.",
    7000218: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    7000215: "Invalid client secret provided.",
    700027: "Client assertion failed signature validation.",
    70000: "The provided grant is invalid or malformed.",
    50196: "The server terminated an operation because it encountered a client request loop.",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_json(obj: dict) -> str:
    return _b64url(json.dumps(obj, separators=(",", ":")).encode())


def make_certificate(
    common_name: str,
    *,
    issuer_key=None,
    issuer_name=None,
    ca: bool = False,
    san: list[x509.GeneralName] | None = None,
    days: int = 2,
):
    """A fresh RSA key and certificate (self-signed unless an issuer is given)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_key is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def pem(key=None, cert=None) -> bytes:
    out = b""
    if cert is not None:
        out += cert.public_bytes(serialization.Encoding.PEM)
    if key is not None:
        out += key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    return out


@dataclass
class Identity:
    """Who completes the device code sign-in."""

    tid: str
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))
    username: str = "admin@contoso.example"


@dataclass
class _Grant:
    identity: Identity
    scope: str


class FakeAuthority:
    """Start with :meth:`start` (or as a context manager); point AZURE_AUTHORITY_HOST at :attr:`url`."""

    def __init__(self, directory: Path, *, client_id: str) -> None:
        self.client_id = client_id.lower()
        self._lock = threading.Lock()
        self.reset()
        # TLS
        directory.mkdir(parents=True, exist_ok=True)
        ca_key, ca_cert = make_certificate("migrate-bot test CA", ca=True)
        key, cert = make_certificate(
            "127.0.0.1",
            issuer_key=ca_key,
            issuer_name=ca_cert.subject,
            san=[x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")],
        )
        self.ca_bundle = directory / "fake-authority-ca.pem"
        self.ca_bundle.write_bytes(pem(cert=ca_cert))
        certfile, keyfile = directory / "fake-authority-cert.pem", directory / "fake-authority-key.pem"
        certfile.write_bytes(pem(cert=cert))
        keyfile.write_bytes(pem(key=key))
        self._server = WSGIServer(self._app, threads=8, certfile=str(certfile), keyfile=str(keyfile))

    def reset(self) -> None:
        """Forget all scripting, observations and issued grants (to share one server between tests)."""
        with self._lock:
            # scripting
            self.identity: Identity | None = None  # None: sign in with the tenant in the URL
            self.pending_polls = 0
            self.device_flow_error: str | None = None
            self.access_token_lifetime = 3600
            self.client_secret: str | None = None
            self.client_certificate: x509.Certificate | None = None
            self._failures: dict[str, collections.deque] = collections.defaultdict(collections.deque)
            # observations
            self.counts: collections.Counter[str] = collections.Counter()
            self.issued: list[str] = []  # every token-ish string handed out
            self.assertions: list[tuple[dict, dict]] = []  # (header, claims) of accepted client assertions
            self.token_requests: list[dict[str, str]] = []  # form fields of each token request, secrets included
            self.device_requests: list[dict[str, str]] = []  # form fields of each device code request
            self._refresh_tokens: dict[str, _Grant] = {}
            self._device_codes: dict[str, str] = {}  # device_code -> requested scope

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> FakeAuthority:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeAuthority:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.port}"

    # -- scripting ---------------------------------------------------------------------------------------------

    def fail_next(
        self, grant: str, code: int | None = None, *, error: str = "invalid_grant", status: int = 400, times: int = 1
    ) -> None:
        """Make the next ``times`` requests of ``grant`` (device_code, refresh_token, client_credentials) fail."""
        for _ in range(times):
            self._failures[grant].append((error, code, status))

    def fail_next_refresh(self, code: int = 700082, *, error: str = "invalid_grant", times: int = 1) -> None:
        self.fail_next("refresh_token", code, error=error, times=times)

    def secrets(self) -> list[str]:
        """Every token string this authority issued (for "never printed, never stored in plaintext" checks)."""
        with self._lock:
            return list(self.issued)

    # -- WSGI --------------------------------------------------------------------------------------------------

    def _app(self, environ: dict, start_response: Any) -> list[bytes]:
        method = environ["REQUEST_METHOD"]
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = environ["wsgi.input"].read(length) if length else b""
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        if method == "GET" and len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            status, payload = self._discovery(parts[0])
        elif method == "POST" and len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"] and parts[3] == "devicecode":
            status, payload = self._devicecode(form)
        elif method == "POST" and len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"] and parts[3] == "token":
            status, payload = self._token(parts[0], form)
        else:
            status, payload = 404, {"error": "not_found"}
        data = json.dumps(payload).encode()
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}.get(status, "Error")
        start_response(
            f"{status} {reason}",
            [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(data)))],
        )
        return [data]

    def _discovery(self, tenant: str) -> tuple[int, dict]:
        with self._lock:
            self.counts["discovery"] += 1
        base = f"{self.url}/{tenant}"
        return 200, {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{self.url}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        }

    def _devicecode(self, form: dict) -> tuple[int, dict]:
        with self._lock:
            self.counts["devicecode"] += 1
            self.device_requests.append(dict(form))
            if form.get("client_id", "").lower() != self.client_id:
                return self._error("unauthorized_client", 700016, 400)
            device_code = f"fake-dc-{uuid.uuid4().hex}"
            user_code = uuid.uuid4().hex[:9].upper()
            self._device_codes[device_code] = form.get("scope", "")
            self.issued.append(device_code)
        return 200, {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": 900,
            "interval": 1,
            "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and "
            f"enter the code {user_code} to authenticate.",
        }

    def _error(self, error: str, code: int | None, status: int = 400) -> tuple[int, dict]:
        body: dict[str, Any] = {
            "error": error,
            "error_description": (f"AADSTS{code}: {DESCRIPTIONS.get(code, 'Error.')}" if code else error)
            + f" Trace ID: {uuid.uuid4()} Correlation ID: {uuid.uuid4()} Timestamp: 2026-01-01 00:00:00Z",
            "timestamp": "2026-01-01 00:00:00Z",
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        }
        if code:
            body["error_codes"] = [code]
        return status, body

    def _token(self, tenant: str, form: dict) -> tuple[int, dict]:
        grant = form.get("grant_type", "")
        short = "device_code" if grant == DEVICE_CODE_GRANT else grant
        with self._lock:
            self.counts[short] += 1
            self.token_requests.append(dict(form))
            if self._failures[short]:
                error, code, status = self._failures[short].popleft()
                return self._error(error, code, status)
            if form.get("client_id", "").lower() != self.client_id:
                return self._error("unauthorized_client", 700016)
            if short == "device_code":
                return self._device_grant(tenant, form)
            if short == "refresh_token":
                return self._refresh_grant(form)
            if short == "client_credentials":
                return self._client_credentials(tenant, form)
            return self._error("unsupported_grant_type", 70003)

    def _device_grant(self, tenant: str, form: dict) -> tuple[int, dict]:
        if "client_secret" in form or "client_assertion" in form:
            return self._error("invalid_client", 700025)
        scope = self._device_codes.get(form.get("device_code", ""))
        if scope is None:
            return self._error("bad_verification_code", 70019)
        if self.pending_polls > 0:
            self.pending_polls -= 1
            return self._error("authorization_pending", 70016)
        if self.device_flow_error:
            return self._error(self.device_flow_error, None)
        del self._device_codes[form["device_code"]]
        identity = self.identity or Identity(tid=tenant)
        return 200, self._user_tokens(_Grant(identity, scope))

    def _refresh_grant(self, form: dict) -> tuple[int, dict]:
        grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            return self._error("invalid_grant", 70000)
        scope = form.get("scope") or grant.scope
        return 200, self._user_tokens(_Grant(grant.identity, scope))

    def _user_tokens(self, grant: _Grant) -> dict:
        identity = grant.identity
        now = int(time.time())
        access_token = f"fake-at-{uuid.uuid4().hex}"
        refresh_token = f"fake-rt-{uuid.uuid4().hex}"
        id_token = ".".join(
            [
                _b64url_json({"typ": "JWT", "alg": "RS256", "kid": "fake-key"}),
                _b64url_json(
                    {
                        "aud": self.client_id,
                        "iss": f"{self.url}/{identity.tid}/v2.0",
                        "iat": now,
                        "nbf": now,
                        "exp": now + 3600,
                        "name": "Migration Admin",
                        "oid": identity.oid,
                        "preferred_username": identity.username,
                        "sub": _b64url(hashlib.sha256(identity.oid.encode()).digest()),
                        "tid": identity.tid,
                        "ver": "2.0",
                    }
                ),
                "ZmFrZS1zaWduYXR1cmU",
            ]
        )
        self._refresh_tokens[refresh_token] = grant  # Entra rotates RTs; the old one stays valid too
        self.issued.extend([access_token, refresh_token, id_token])
        granted = " ".join(s for s in grant.scope.split() if s not in RESERVED_SCOPES)
        return {
            "token_type": "Bearer",
            "scope": granted,
            "expires_in": self.access_token_lifetime,
            "ext_expires_in": self.access_token_lifetime,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "id_token": id_token,
            "client_info": _b64url_json({"uid": identity.oid, "utid": identity.tid}),
        }

    def _client_credentials(self, tenant: str, form: dict) -> tuple[int, dict]:
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return self._error("invalid_scope", 1002012)
        if "client_secret" in form:
            if self.client_secret is None or form["client_secret"] != self.client_secret:
                return self._error("invalid_client", 7000215, 401)
        elif form.get("client_assertion_type") == ASSERTION_TYPE:
            if not self._assertion_ok(tenant, form.get("client_assertion", "")):
                return self._error("invalid_client", 700027, 401)
        else:
            return self._error("invalid_client", 7000218, 401)
        access_token = f"fake-app-at-{uuid.uuid4().hex}"
        self.issued.append(access_token)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": access_token}

    def _assertion_ok(self, tenant: str, assertion: str) -> bool:
        """Check the client assertion like Entra: x5t names the registered certificate, signature, aud, iss/sub."""
        cert = self.client_certificate
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except ValueError:
            return False
        if cert is None:
            return False
        if header.get("x5t#S256"):  # base64url; MSAL keeps the "=" padding, Entra accepts both
            if str(header["x5t#S256"]).rstrip("=") != _b64url(cert.fingerprint(hashes.SHA256())):
                return False
        elif str(header.get("x5t")).rstrip("=") != _b64url(cert.fingerprint(hashes.SHA1())):
            return False
        signed = f"{head_b64}.{claims_b64}".encode()
        try:
            if header.get("alg") == "RS256":
                cert.public_key().verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif header.get("alg") == "PS256":
                cert.public_key().verify(
                    signature,
                    signed,
                    padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH),
                    hashes.SHA256(),
                )
            else:
                return False
        except InvalidSignature:
            return False
        now = time.time()
        if claims.get("aud") != f"{self.url}/{tenant}/oauth2/v2.0/token":
            return False
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id or claims.get("exp", 0) < now:
            return False
        self.assertions.append((header, claims))
        return True


# -- wiring for tests ----------------------------------------------------------------------------------------------

TENANT_ID = "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"
OTHER_TENANT_ID = "0f0e0d0c-0b0a-4909-8807-060504030201"
CLIENT_ID = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b"

#: variables that would make an HTTP client trust something other than the fake's CA (set on build machines)
CA_ENV_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def clean_environment(monkeypatch: Any) -> None:
    """Remove the CA, proxy and migrate-bot variables a developer's machine may set."""
    for name in list(os.environ):
        if name in CA_ENV_VARS or name in setting_names() or name.lower().endswith("_proxy"):
            monkeypatch.delenv(name, raising=False)


def credential_env(authority: FakeAuthority, state_dir: Path, key: str, *, mode: str = "delegated") -> dict[str, str]:
    """The environment ``migrate-bot`` needs to sign in against ``authority`` (names are the public contract)."""
    return {
        "GRAPH_AUTH_MODE": mode,
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "AZURE_AUTHORITY_HOST": authority.url,
        "AZURE_AUTHORITY_CA_BUNDLE": str(authority.ca_bundle),
        "TOKEN_CACHE_KEY": key,
        "TOKEN_CACHE_PATH": str(state_dir / "token-cache.bin"),
    }


# -- fixtures ------------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: Any, tmp_path: Path) -> None:
    """Autouse in a module that imports it: :func:`clean_environment`, and the test runs in ``tmp_path``."""
    clean_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def shared_authority(tmp_path_factory: Any) -> Iterator[FakeAuthority]:
    """One HTTPS server per module (starting and stopping one costs ~0.5 s); use :func:`authority` in tests."""
    with FakeAuthority(tmp_path_factory.mktemp("authority"), client_id=CLIENT_ID) as fake:
        yield fake


@pytest.fixture
def authority(shared_authority: FakeAuthority) -> FakeAuthority:
    """The module's fake authority, its state reset for this test (needs :func:`shared_authority`)."""
    shared_authority.reset()
    return shared_authority


@pytest.fixture
def key() -> str:
    """A fresh TOKEN_CACHE_KEY: 32 random bytes in base64."""
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """Where the token cache lives (``TOKEN_CACHE_PATH`` is ``state_dir / "token-cache.bin"``)."""
    return tmp_path / "state"


@pytest.fixture
def authority_env(authority: FakeAuthority, state_dir: Path, key: str, monkeypatch: Any) -> dict[str, str]:
    """:func:`credential_env` set in the environment, as an operator would (needs the fixtures above but clean_env)."""
    values = credential_env(authority, state_dir, key)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values
