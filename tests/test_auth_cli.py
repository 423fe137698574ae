"""``migrate-bot login | logout | auth status | keygen`` against the fake authority, through bot.cli.main.main too."""

from __future__ import annotations

import argparse
import base64
import os
import stat

import pytest

from bot.cli.auth import (
    auth_command,
    keygen_command,
    login_command,
    logout_command,
)
from bot.cli.main import main
from bot.config import load_settings
from bot.credential.token_cache import CacheMetadata
from tests.support.fake_authority import (  # noqa: F401 - fixtures
    OTHER_TENANT_ID,
    TENANT_ID,
    Identity,
    authority,
    authority_env,
    clean_env,
    key,
    shared_authority,
    state_dir,
)


@pytest.fixture
def cache_file(state_dir):
    return state_dir / "token-cache.bin"


def no_args(**fields) -> argparse.Namespace:
    return argparse.Namespace(verbose=False, **fields)


def test_login_command_prints_the_code_and_signs_in(authority_env, authority, cache_file, capsys):
    assert login_command(no_args(command="login"), load_settings()) == 0
    out = capsys.readouterr().out
    assert "https://microsoft.com/devicelogin" in out and "enter the code" in out
    assert "Signed in as admin@contoso.example" in out
    assert CacheMetadata.load(cache_file).username == "admin@contoso.example"
    assert stat.S_IMODE(cache_file.stat().st_mode) == 0o600
    for secret in authority.secrets():
        if not secret.startswith("fake-dc-"):
            assert secret not in out


def test_cli_main_login_with_the_environment(authority_env, authority, cache_file, capsys):
    assert main(["login"]) == 0
    assert authority.counts["device_code"] == 1
    assert cache_file.exists() and b"fake-rt-" not in cache_file.read_bytes()
    assert "Signed in as admin@contoso.example" in capsys.readouterr().out


def test_cli_main_login_in_another_tenant_fails(authority_env, authority, cache_file, capsys):
    authority.identity = Identity(tid=OTHER_TENANT_ID)
    assert main(["login"]) == 1
    err = capsys.readouterr().err
    assert f"AZURE_TENANT_ID is {TENANT_ID}" in err and "it was removed" in err
    assert CacheMetadata.load(cache_file) is None
    assert main(["auth", "status"]) == 1


def test_cli_main_login_without_a_key_is_a_configuration_error(authority_env, monkeypatch, capsys):
    monkeypatch.delenv("TOKEN_CACHE_KEY")
    assert main(["login"]) == 2
    assert "TOKEN_CACHE_KEY" in capsys.readouterr().err


def test_auth_status_shows_account_tenant_and_freshness_but_no_secret(authority_env, authority, key, capsys):
    assert main(["login"]) == 0
    capsys.readouterr()
    assert main(["auth", "status"]) == 0
    out = capsys.readouterr().out
    assert "admin@contoso.example" in out and TENANT_ID in out and "delegated" in out
    assert "refresh token: present" in out and "access token:  valid until" in out and "last refresh:" in out
    assert key not in out
    secrets = authority.secrets()
    assert secrets and not any(secret in out for secret in secrets)


def test_auth_status_with_the_wrong_key(authority_env, authority, monkeypatch, capsys):
    assert main(["login"]) == 0
    monkeypatch.setenv("TOKEN_CACHE_KEY", base64.b64encode(os.urandom(32)).decode())
    capsys.readouterr()
    assert auth_command(no_args(action="status"), load_settings()) == 1
    assert "cannot be decrypted with TOKEN_CACHE_KEY (wrong key?)" in capsys.readouterr().out


def test_auth_status_in_application_mode_hides_the_secret(authority_env, authority, monkeypatch, capsys):
    monkeypatch.setenv("GRAPH_AUTH_MODE", "application")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "very-secret-client-secret")
    assert main(["auth", "status"]) == 0
    out = capsys.readouterr().out
    assert "application" in out and "client secret" in out and "very-secret-client-secret" not in out
    assert authority.counts["client_credentials"] == 0  # status does not call the authority


def test_login_in_application_mode_is_refused(authority_env, monkeypatch, capsys):
    monkeypatch.setenv("GRAPH_AUTH_MODE", "application")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "very-secret-client-secret")
    assert main(["login"]) == 2
    assert "login is for delegated mode" in capsys.readouterr().err


def test_logout_removes_the_cache_even_with_a_lost_key(authority_env, authority, cache_file, monkeypatch, capsys):
    assert main(["login"]) == 0
    monkeypatch.setenv("TOKEN_CACHE_KEY", base64.b64encode(os.urandom(32)).decode())
    capsys.readouterr()
    assert logout_command(no_args(), load_settings()) == 0
    assert "Signed out" in capsys.readouterr().out
    assert not cache_file.exists() and not CacheMetadata.path_for(cache_file).exists()
    assert main(["auth", "status"]) == 1
    assert "account:       none" in capsys.readouterr().out
    assert main(["logout"]) == 0
    assert "No admin was signed in" in capsys.readouterr().out


def test_keygen_prints_a_fresh_32_byte_key(capsys):
    assert keygen_command(no_args(), load_settings()) == 0
    first = capsys.readouterr().out.strip()
    assert main(["keygen"]) == 0
    second = capsys.readouterr().out.strip()
    assert len(base64.b64decode(first, validate=True)) == 32
    assert len(base64.b64decode(second, validate=True)) == 32 and first != second
    assert load_settings(token_cache_key=first).cache_key_bytes == base64.b64decode(first)
