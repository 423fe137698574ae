"""The admin credential against a fake Entra ID over real HTTPS: login, silent refresh, failures, persistence."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import time
from pathlib import Path

import msal
import pytest

from bot.config import load_settings
from bot.credential.application import AppCredential
from bot.credential.base import (
    GRAPH_DELEGATED_SCOPE,
    StaticToken,
    TransientCredentialError,
)
from bot.credential.delegated import AdminCredential
from bot.credential.factory import build_credential
from bot.credential.token_cache import AesGcmFilePersistence, CacheMetadata
from bot.errors import ConfigError, CredentialError
from tests.support.fake_authority import (  # noqa: F401 - fixtures
    CLIENT_ID,
    OTHER_TENANT_ID,
    TENANT_ID,
    FakeAuthority,
    Identity,
    authority,
    authority_env,
    clean_env,
    credential_env,
    key,
    make_certificate,
    pem,
    shared_authority,
    state_dir,
)

WRONG_KEY = (
    "token cache cannot be decrypted with TOKEN_CACHE_KEY (wrong key?); run migrate-bot login with the right key"
)


@pytest.fixture
def settings(authority_env):
    """Settings read from the environment, as the CLI does; keyword overrides win."""
    return load_settings


class ShiftedTime:
    """Stands in for the ``time`` module inside MSAL so a test can jump an hour ahead without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return _real_time() + self.offset

    def __getattr__(self, name):
        return getattr(time, name)


_real_time = time.time


@pytest.fixture
def msal_clock(monkeypatch):
    clock = ShiftedTime()
    for module in (msal.application, msal.token_cache, msal.individual_cache):
        monkeypatch.setattr(module, "time", clock)
    return clock


def login(settings, **overrides) -> AdminCredential:
    credential = AdminCredential(settings(**overrides))
    credential.login(show=lambda message: None)
    return credential


def cache_state(path: Path, key: str) -> dict:
    return json.loads(AesGcmFilePersistence(path, base64.b64decode(key)).load())


# -- login and persistence -----------------------------------------------------------------------------------------


def test_login_stores_the_admin_in_an_encrypted_private_cache(settings, authority, state_dir, key):
    shown = []
    credential = AdminCredential(settings())
    status = credential.login(show=shown.append)

    assert authority.counts["devicecode"] == 1 and authority.counts["device_code"] == 1
    assert "https://microsoft.com/devicelogin" in shown[0]
    assert status.signed_in and status.has_refresh_token and status.ok
    assert status.username == "admin@contoso.example"
    assert status.tenant_id == TENANT_ID
    meta = CacheMetadata.load(state_dir / "token-cache.bin")
    assert meta is not None and meta.home_account_id == status.home_account_id
    assert meta.home_account_id.endswith("." + TENANT_ID)
    assert meta.last_refresh_at is not None

    cache_file = state_dir / "token-cache.bin"
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(CacheMetadata.path_for(cache_file).stat().st_mode) == 0o600
    blob = cache_file.read_bytes()
    assert blob.startswith(b"MBTC\x01")
    for secret in authority.secrets():
        assert secret.encode() not in blob
        assert secret not in CacheMetadata.path_for(cache_file).read_text()
    assert b"RefreshToken" not in blob and b"admin@contoso" not in blob
    state = cache_state(cache_file, key)
    assert len(state["RefreshToken"]) == 1 and len(state["Account"]) == 1
    assert not list(state_dir.glob("*.tmp"))


def test_device_flow_keeps_polling_while_authorization_is_pending(settings, authority):
    authority.pending_polls = 1
    credential = login(settings)
    assert authority.counts["device_code"] == 2
    assert credential.status().signed_in


def test_form_fields_reach_the_authority_as_requests_would_send_them(settings, authority, tmp_path):
    """httpx, unlike requests, would send None as ``claims=`` and bytes as ``b'...'``; the adapter must not."""
    login(settings)
    key, cert = make_certificate("app")
    (tmp_path / "app.pem").write_bytes(pem(key=key, cert=cert))
    authority.client_certificate = cert
    build_credential(
        settings(graph_auth_mode="application", azure_client_certificate_path=str(tmp_path / "app.pem"))
    ).token()
    assert len(authority.token_requests) == 2
    for form in authority.token_requests + authority.device_requests:
        assert "claims" not in form
        assert not any(value.startswith("b'") for value in form.values())


def test_login_with_another_tenant_is_refused_and_that_account_removed(settings, authority, state_dir, key):
    first = login(settings)
    admin = first.status()

    authority.identity = Identity(tid=OTHER_TENANT_ID, username="intruder@fabrikam.example")
    with pytest.raises(CredentialError) as caught:
        AdminCredential(settings()).login(show=lambda message: None)

    assert caught.value.code == "tenant_mismatch"
    assert OTHER_TENANT_ID in str(caught.value) and TENANT_ID in str(caught.value)
    state = cache_state(state_dir / "token-cache.bin", key)
    assert [a["username"] for a in state["Account"].values()] == ["admin@contoso.example"]
    assert all(rt["home_account_id"] == admin.home_account_id for rt in state["RefreshToken"].values())
    assert AdminCredential(settings()).status().home_account_id == admin.home_account_id


def test_a_new_login_replaces_the_previous_admin(settings, authority, state_dir, key):
    first = login(settings).status()
    authority.identity = Identity(tid=TENANT_ID, username="second@contoso.example")
    second = login(settings).status()

    assert second.username == "second@contoso.example" and second.home_account_id != first.home_account_id
    state = cache_state(state_dir / "token-cache.bin", key)
    assert {a["home_account_id"] for a in state["Account"].values()} == {second.home_account_id}
    assert {rt["home_account_id"] for rt in state["RefreshToken"].values()} == {second.home_account_id}


def test_declined_device_code_sign_in_is_reported(settings, authority, state_dir):
    authority.device_flow_error = "authorization_declined"
    with pytest.raises(CredentialError, match="did not complete .*run migrate-bot login again"):
        AdminCredential(settings()).login(show=lambda message: None)
    assert CacheMetadata.load(state_dir / "token-cache.bin") is None


# -- silent acquisition --------------------------------------------------------------------------------------------


def test_token_comes_from_the_cache_then_from_the_refresh_token_after_expiry(settings, authority, msal_clock, caplog):
    caplog.set_level(logging.DEBUG, logger="bot")
    credential = login(settings)
    login_refresh = credential.status().last_refresh_at
    bot = AdminCredential(settings())  # the bot process: its own MSAL app, the same cache file

    first = bot.token()
    assert first.startswith("fake-at-") and first in authority.secrets()
    assert authority.counts["refresh_token"] == 0

    msal_clock.offset = 3600 + 60
    second = bot.token()
    assert second != first and second in authority.secrets()
    assert authority.counts["refresh_token"] == 1
    assert bot.token() == second and authority.counts["refresh_token"] == 1
    assert bot.status().last_refresh_at > login_refresh
    for secret in authority.secrets():
        assert secret not in caplog.text


def test_keep_alive_redeems_the_refresh_token_and_records_the_time(settings, authority):
    credential = login(settings)
    before = credential.status().last_refresh_at
    status = credential.keep_alive()
    assert authority.counts["refresh_token"] == 1
    assert status.last_refresh_at > before and status.ok


def test_claims_challenge_bypasses_the_cache_and_is_sent_as_json(settings, authority):
    credential = login(settings)
    challenge = {"access_token": {"nbf": {"essential": True, "value": "1700000000"}}}
    encoded = base64.b64encode(json.dumps(challenge).encode()).decode()
    token = credential.token(claims_challenge=encoded)
    assert authority.counts["refresh_token"] == 1
    assert json.loads(authority.token_requests[-1]["claims"]) == challenge
    assert token in authority.secrets()


def test_expired_refresh_token_asks_for_login_and_stops_asking_the_authority(settings, authority, state_dir):
    authority.access_token_lifetime = 60  # under MSAL's 5-minute margin: every token() redeems the refresh token
    login(settings)
    bot = AdminCredential(settings())
    app = bot._msal_app()
    calls = []
    real = app.acquire_token_silent_with_error
    app.acquire_token_silent_with_error = lambda *a, **kw: calls.append(1) or real(*a, **kw)

    authority.fail_next_refresh(700082)
    with pytest.raises(CredentialError) as caught:
        bot.token()
    assert caught.value.code == "session_expired"
    assert "run migrate-bot login" in str(caught.value) and "AADSTS700082" in str(caught.value)
    assert not isinstance(caught.value, TransientCredentialError)

    with pytest.raises(CredentialError) as again:
        bot.token()
    assert again.value.code == "session_expired"
    assert len(calls) == 1 and authority.counts["refresh_token"] == 1
    assert "session expired" in (bot.status().problem or "")

    login(settings)  # the operator signs in again: the bot tries again
    assert bot.token() in authority.secrets()
    assert len(calls) == 2 and authority.counts["refresh_token"] == 2


def test_the_pause_after_a_failure_ends_after_the_cool_down(settings, authority, msal_clock):
    authority.access_token_lifetime = 60
    login(settings)
    now = [1000.0]
    bot = AdminCredential(settings(), cooldown_seconds=600, clock=lambda: now[0])
    authority.fail_next_refresh(50173)
    with pytest.raises(CredentialError, match="sessions were revoked"):
        bot.token()
    now[0] += 599
    with pytest.raises(CredentialError, match="sessions were revoked"):
        bot.token()
    assert authority.counts["refresh_token"] == 1
    now[0] += 2
    msal_clock.offset = 120  # and past MSAL's own 60 s replay of an identical HTTP 400
    assert bot.token() in authority.secrets()
    assert authority.counts["refresh_token"] == 2


@pytest.mark.parametrize(
    ("error", "code", "expected_code", "words"),
    [
        ("invalid_grant", 70043, "sign_in_frequency", "sign-in frequency"),
        ("interaction_required", 50076, "interaction_required", "MFA"),
        ("invalid_grant", 65001, "consent_required", "CrossTenantContentMigration.ReadWrite.All"),
        ("invalid_grant", 50057, "account_unusable", "disabled"),
        ("invalid_client", 7000218, "client_type", "Allow public client flows"),
    ],
)
def test_refresh_errors_become_instructions(settings, authority, error, code, expected_code, words):
    authority.access_token_lifetime = 60
    login(settings)
    authority.fail_next("refresh_token", code, error=error)
    with pytest.raises(CredentialError) as caught:
        AdminCredential(settings()).token()
    assert caught.value.code == expected_code
    assert words in str(caught.value) and f"AADSTS{code}" in str(caught.value)


def test_authority_outage_is_transient_and_does_not_pause(settings, authority, msal_clock):
    authority.access_token_lifetime = 60
    login(settings)
    bot = AdminCredential(settings())
    authority.fail_next("refresh_token", None, error="temporarily_unavailable", status=503)
    with pytest.raises(TransientCredentialError) as caught:
        bot.token()
    assert caught.value.code == "transient" and "login" not in str(caught.value).replace("no new login", "")
    msal_clock.offset = 70  # past MSAL's 60 s throttle of 5xx answers
    assert bot.token() in authority.secrets()
    assert authority.counts["refresh_token"] == 2


def test_unreachable_authority_is_transient(settings, tmp_path, state_dir, key, monkeypatch):
    with FakeAuthority(tmp_path / "short-lived", client_id=CLIENT_ID) as authority:
        for name, value in credential_env(authority, state_dir, key).items():
            monkeypatch.setenv(name, value)
        login(settings)
    with pytest.raises(TransientCredentialError, match="could not be reached"):
        AdminCredential(settings()).token()


def test_no_admin_signed_in(settings, authority):
    with pytest.raises(CredentialError, match="^no admin signed in: run migrate-bot login$"):
        AdminCredential(settings()).token()
    assert authority.counts["discovery"] == 0


def test_wrong_key_fails_closed_and_leaves_the_file_alone(settings, authority, state_dir):
    login(settings)
    cache_file = state_dir / "token-cache.bin"
    before = (cache_file.read_bytes(), cache_file.stat().st_mtime_ns)
    other_key = base64.b64encode(os.urandom(32)).decode()

    with pytest.raises(CredentialError) as caught:
        AdminCredential(settings(token_cache_key=other_key)).token()
    assert str(caught.value).startswith(WRONG_KEY) and caught.value.code == "cache_unreadable"
    assert str(state_dir) not in str(caught.value)  # the text reaches Slack: no host path in it

    with pytest.raises(CredentialError, match="wrong key"):
        AdminCredential(settings(token_cache_key=other_key)).login(show=lambda message: None)
    assert authority.counts["devicecode"] == 1  # refused before a second device code was requested
    status = AdminCredential(settings(token_cache_key=other_key)).status()
    assert not status.ok and status.problem.startswith(WRONG_KEY) and str(state_dir) not in status.problem
    assert (cache_file.read_bytes(), cache_file.stat().st_mtime_ns) == before
    assert AdminCredential(settings()).token() in authority.secrets()  # the right key still works


def test_a_missing_cache_file_is_named_without_its_host_path(settings, authority, state_dir):
    login(settings)
    (state_dir / "token-cache.bin").unlink()
    status = AdminCredential(settings()).status()
    assert not status.ok and "token cache file is missing" in status.problem  # shown by /migrate whoami
    assert str(state_dir) not in status.problem


def test_a_plaintext_cache_file_is_refused(settings, authority, state_dir):
    state_dir.mkdir(mode=0o700)
    (state_dir / "token-cache.bin").write_text('{"RefreshToken": {}}')
    CacheMetadata(
        home_account_id="x.y", username=None, tenant_id=TENANT_ID, client_id=CLIENT_ID, authority="a", login_at=1.0
    ).save(state_dir / "token-cache.bin")
    with pytest.raises(CredentialError, match="not a migrate-bot encrypted token cache"):
        AdminCredential(settings()).token()
    assert (state_dir / "token-cache.bin").read_text() == '{"RefreshToken": {}}'


def test_logout_is_seen_by_a_running_bot(settings, authority, state_dir):
    login(settings)
    bot = AdminCredential(settings())
    assert bot.token()
    removed = AdminCredential(settings()).logout()
    assert state_dir / "token-cache.bin" in removed and not (state_dir / "token-cache.bin").exists()
    with pytest.raises(CredentialError, match="no admin signed in"):
        bot.token()


def test_bot_picks_up_a_login_made_after_it_started(settings, authority):
    bot = AdminCredential(settings())
    with pytest.raises(CredentialError, match="no admin signed in"):
        bot.token()
    login(settings)
    assert bot.token() in authority.secrets()


def test_status_without_a_login_creates_nothing(settings, authority, state_dir):
    status = AdminCredential(settings()).status()
    assert not status.signed_in and not status.ok and "no admin signed in" in status.problem
    assert not state_dir.exists()
    assert authority.counts["discovery"] == 0


# -- application mode and the factory ------------------------------------------------------------------------------


def test_application_mode_with_a_client_secret(settings, authority):
    authority.client_secret = "app-secret-value-for-tests"
    credential = build_credential(
        settings(graph_auth_mode="application", azure_client_secret="app-secret-value-for-tests")
    )
    assert isinstance(credential, AppCredential)
    token = credential.token()
    assert token.startswith("fake-app-at-") and credential.token() == token
    assert authority.counts["client_credentials"] == 1
    assert authority.token_requests[-1]["scope"] == "https://graph.microsoft.com/.default"
    assert credential.status().access_token_expires_at is not None


def test_application_mode_with_a_wrong_secret(settings, authority):
    authority.client_secret = "the-right-one"
    credential = build_credential(settings(graph_auth_mode="application", azure_client_secret="a-wrong-one"))
    with pytest.raises(CredentialError) as caught:
        credential.token()
    assert caught.value.code == "client_credential" and "AZURE_CLIENT_SECRET" in str(caught.value)
    with pytest.raises(CredentialError):
        credential.token()
    assert authority.counts["client_credentials"] == 1  # paused, not retried at once


def test_application_mode_with_a_certificate(settings, authority, tmp_path):
    key, cert = make_certificate("migrate-bot app credential")
    path = tmp_path / "app.pem"
    path.write_bytes(pem(key=key, cert=cert))
    authority.client_certificate = cert
    credential = build_credential(settings(graph_auth_mode="application", azure_client_certificate_path=str(path)))

    assert credential.token().startswith("fake-app-at-")
    header, claims = authority.assertions[-1]
    expected = base64.urlsafe_b64encode(bytes.fromhex(credential.certificate.thumbprint_sha1)).rstrip(b"=").decode()
    assert header["x5t"].rstrip("=") == expected
    assert claims["iss"] == CLIENT_ID and claims["aud"].endswith(f"/{TENANT_ID}/oauth2/v2.0/token")
    assert "client_secret" not in authority.token_requests[-1]
    assert credential.certificate.thumbprint_sha1 in credential.status().credential_kind


def test_application_mode_with_an_unregistered_certificate(settings, authority, tmp_path):
    key, cert = make_certificate("not registered")
    path = tmp_path / "app.pem"
    path.write_bytes(pem(key=key, cert=cert))
    authority.client_certificate = make_certificate("registered")[1]
    credential = build_credential(settings(graph_auth_mode="application", azure_client_certificate_path=str(path)))
    with pytest.raises(CredentialError, match="certificate") as caught:
        credential.token()
    assert "AADSTS700027" in str(caught.value)


def test_certificate_file_must_hold_a_matching_key(settings, authority, tmp_path):
    key, _ = make_certificate("a")
    _, cert = make_certificate("b")
    path = tmp_path / "mismatch.pem"
    path.write_bytes(pem(key=key, cert=cert))
    with pytest.raises(ConfigError, match="AZURE_CLIENT_CERTIFICATE_PATH: the certificate does not match"):
        build_credential(settings(graph_auth_mode="application", azure_client_certificate_path=str(path)))


def test_factory_needs_the_settings_of_the_mode(settings, authority):
    with pytest.raises(ConfigError, match="TOKEN_CACHE_KEY"):
        build_credential(settings(token_cache_key=""))
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        build_credential(settings(graph_auth_mode="application"))
    assert isinstance(build_credential(settings()), AdminCredential)
    assert StaticToken("x").token() == "x"


def test_delegated_scope_is_requested_at_login(settings, authority):
    login(settings)
    requested = authority.device_requests[0]["scope"].split()
    assert GRAPH_DELEGATED_SCOPE in requested and "offline_access" in requested
    assert authority.device_requests[0]["client_id"] == CLIENT_ID
