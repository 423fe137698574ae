"""Shared fixtures. The end-to-end world is :class:`bot.rehearsal.sandbox.Sandbox`: real HTTP on loopback."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import setting_names
from bot.rehearsal.sandbox import Sandbox

#: A PostgreSQL server for the ``postgres`` tests (a database each test module creates and drops on it).
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")
#: CI sets this: a ``postgres`` test that does not run fails the run instead of skipping.
REQUIRE_POSTGRES = os.environ.get("MIGRATE_BOT_REQUIRE_POSTGRES") == "1"
SETTINGS = setting_names()  # what a developer's environment must not leak into a test
NO_POSTGRES = "needs PostgreSQL: set TEST_DATABASE_URL=postgresql+psycopg://user@host:5432/db (.ci/run does)"


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No setting leaks in from the machine, and no ``.env`` from the work tree is read."""
    for name in list(os.environ):
        if name in SETTINGS or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # the default data folder, per test
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_world(tmp_path):
    """Build a running :class:`Sandbox` with setting overrides; everything stops after the test."""
    worlds: list[Sandbox] = []

    def build(**settings) -> Sandbox:
        data_dir = tmp_path / f"world{len(worlds)}"
        data_dir.mkdir()
        world = Sandbox(data_dir=data_dir, settings=settings).start()
        worlds.append(world)
        return world

    yield build
    for world in worlds:
        world.stop()
    for world in worlds:
        assert_slack_took_everything(world.slack)


def assert_slack_took_everything(standin) -> None:
    """Fail the test whose bot did something Slack would not take (e.g. acked after 3 s)."""
    assert not standin.violations, f"Slack would not have taken: {standin.violations}"


@pytest.fixture(scope="module")
def pg_url():
    """A fresh PostgreSQL database for this test module (made on TEST_DATABASE_URL's server, dropped after)."""
    if not TEST_DATABASE_URL:
        if REQUIRE_POSTGRES:
            pytest.fail(NO_POSTGRES + "; MIGRATE_BOT_REQUIRE_POSTGRES=1 forbids skipping")
        pytest.skip(NO_POSTGRES)
    name = f"mb_test_{secrets.token_hex(4)}"
    admin = create_engine(TEST_DATABASE_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def pytest_collection_modifyitems(config, items):
    """Tests of a module that uses ``pg_url`` are marked ``postgres``."""
    for item in items:
        if "pg_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With MIGRATE_BOT_REQUIRE_POSTGRES=1 (CI), a skipped ``postgres`` test is a failure."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_POSTGRES and report.skipped and item.get_closest_marker("postgres") is not None:
        report.outcome = "failed"
        report.longrepr = f"PostgreSQL test skipped in CI: {report.longrepr}"
