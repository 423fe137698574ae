"""Shared fixtures. The end-to-end world is :class:`bot.rehearsal.sandbox.Sandbox`: real HTTP on loopback."""

from __future__ import annotations

import os

import pytest

from bot.rehearsal.sandbox import Sandbox

_ENV_PREFIXES = (
    "SLACK_",
    "AZURE_",
    "GRAPH_",
    "TOKEN_CACHE",
    "DATABASE_URL",
    "POLL_",
    "ALLOWED_",
    "APPROV",
    "REQUIRE_APPROVAL",
    "MIGRATORS_",
    "OPS_CHANNEL",
    "ADMIN_MENTION",
    "STALE_AFTER",
    "MIGRATE_BOT_",
)


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch, tmp_path):
    """No setting leaks in from the machine, and no ``.env`` from the work tree is read."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES) or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.delenv(name, raising=False)
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
