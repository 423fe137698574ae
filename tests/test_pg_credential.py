"""The admin credential shared by replicas through PostgreSQL: one encrypted row, compare-and-swap writes."""

from __future__ import annotations

import argparse
import base64
import threading

import msal
import pytest
from sqlalchemy import select, text

from bot.cli.auth import logout_command
from bot.config import load_settings
from bot.credential.db_cache import DbTokenCache
from bot.credential.delegated import AdminCredential
from bot.credential.token_cache import MAGIC, AesGcmFilePersistence
from bot.errors import CredentialError
from bot.store import TokenCacheRow, create_db_engine, migrate_schema
from tests.support.fake_authority import (  # noqa: F401 - fixtures
    authority,
    authority_env,
    clean_env,
    key,
    shared_authority,
    state_dir,
)
from tests.test_auth import msal_clock  # noqa: F401 - fixture


@pytest.fixture
def engine(pg_url):
    engine = create_db_engine(pg_url)
    migrate_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM token_cache"))
    yield engine
    engine.dispose()


@pytest.fixture
def settings(authority_env, engine, pg_url, monkeypatch):
    """Settings as every replica and the CLI read them: DATABASE_URL is the shared PostgreSQL database."""
    monkeypatch.setenv("DATABASE_URL", pg_url)
    return load_settings


def replica(settings) -> AdminCredential:
    return AdminCredential(settings())


def test_login_on_any_host_serves_every_replica_from_one_encrypted_row(settings, authority, engine, state_dir):
    with replica(settings) as cli:
        cli.login(show=lambda message: None)
        assert cli.cache_location == "the token_cache table of DATABASE_URL"
    first, second = replica(settings), replica(settings)
    assert first.token() in authority.secrets() and second.token() in authority.secrets()
    assert authority.counts["refresh_token"] == 0
    assert not (state_dir / "token-cache.bin").exists()  # no file: the database holds it
    with engine.connect() as connection:
        [row] = connection.execute(select(TokenCacheRow)).all()
    assert row.blob.startswith(MAGIC)
    for secret in authority.secrets():
        assert secret.encode() not in row.blob  # AES-GCM, as the file
    assert first.status().username == "admin@contoso.example"


def test_a_refresh_by_one_replica_is_used_by_the_other(settings, authority, msal_clock):
    replica(settings).login(show=lambda message: None)
    first, second = replica(settings), replica(settings)
    first.token()
    second.token()
    msal_clock.offset = 3600 + 60
    refreshed = first.token()
    assert authority.counts["refresh_token"] == 1
    assert second.token() == refreshed and authority.counts["refresh_token"] == 1
    assert second.status().last_refresh_at == first.status().last_refresh_at


def test_logout_on_any_host_signs_every_replica_out(settings, authority, capsys):
    replica(settings).login(show=lambda message: None)
    running = replica(settings)
    assert running.token()
    assert logout_command(argparse.Namespace(), settings()) == 0
    assert "the token_cache table" in capsys.readouterr().out
    with pytest.raises(CredentialError, match="no admin signed in"):
        running.token()
    assert logout_command(argparse.Namespace(), settings()) == 0
    assert "No admin was signed in (no token cache in the token_cache table" in capsys.readouterr().out


def test_a_replica_with_the_wrong_key_cannot_read_the_row(settings, authority):
    replica(settings).login(show=lambda message: None)
    other = base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(CredentialError, match="cannot be decrypted with TOKEN_CACHE_KEY"):
        AdminCredential(settings(token_cache_key=other)).token()


def test_concurrent_writes_from_two_replicas_lose_nothing(engine, key):
    crypto = AesGcmFilePersistence("test", base64.b64decode(key))
    caches = [DbTokenCache(engine, crypto), DbTokenCache(engine, crypto)]
    barrier = threading.Barrier(16)

    def write(number: int) -> None:
        barrier.wait()
        caches[number % 2].modify(
            msal.TokenCache.CredentialType.ACCOUNT,
            {"home_account_id": f"h{number}", "environment": "login.example", "realm": "r"},
            {"username": f"user{number}"},
        )

    threads = [threading.Thread(target=write, args=(number,)) for number in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    reader = DbTokenCache(engine, crypto)
    names = {entry["username"] for entry in reader.search(msal.TokenCache.CredentialType.ACCOUNT)}
    assert names == {f"user{number}" for number in range(16)}


def test_a_write_based_on_a_stale_version_is_refused_and_redone(engine, key):
    crypto = AesGcmFilePersistence("test", base64.b64decode(key))
    first, second = DbTokenCache(engine, crypto), DbTokenCache(engine, crypto)
    account = msal.TokenCache.CredentialType.ACCOUNT
    first.modify(account, {"home_account_id": "a", "environment": "e", "realm": "r"}, {"username": "a"})
    version = first._version
    second.modify(account, {"home_account_id": "b", "environment": "e", "realm": "r"}, {"username": "b"})
    assert first._swap(version, crypto.encrypt(first.serialize())) is False  # would undo the other's write
    real_read = first._read
    raced = []

    def read_then_lose_the_race(*, full):
        found = real_read(full=full)
        if full and not raced:  # another replica writes between this read and this write
            raced.append(1)
            second.modify(account, {"home_account_id": "c", "environment": "e", "realm": "r"}, {"username": "c"})
        return found

    first._read = read_then_lose_the_race
    first.modify(account, {"home_account_id": "d", "environment": "e", "realm": "r"}, {"username": "d"})
    assert first.conflicts == 1
    names = {entry["username"] for entry in DbTokenCache(engine, crypto).search(account)}
    assert names == {"a", "b", "c", "d"}
