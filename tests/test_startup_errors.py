"""``migrate-bot run``'s start-up failures: one line naming the part and the setting on stderr, exit 2 for a
setting, exit 1 for a service that did not answer; the traceback only with ``-v`` (before or after ``run``)."""

from __future__ import annotations

import base64
import os
import socket

import pytest

from bot.cli.main import main
from bot.config import load_settings
from bot.ops.startup import admin_credential
from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.slack_standin import SlackStandIn
from bot.slack.scopes import BOT_SCOPES

SIM_TOKEN = "startup-static-token"


@pytest.fixture
def world(monkeypatch, tmp_path):
    """A healthy HTTP-mode rehearsal setup; each test breaks one part."""
    with (
        SlackStandIn(scopes=frozenset(BOT_SCOPES)) as slack,
        GraphSimulator(clock=SimClock(speed=0), token=SIM_TOKEN) as sim,
    ):
        values = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": "startup-signing-secret",
            "SLACK_API_URL": slack.api_url,
            "GRAPH_BASE_URL": sim.base_url,
            "GRAPH_STATIC_TOKEN": SIM_TOKEN,
            "MIGRATE_BOT_DATA_DIR": str(tmp_path / "data"),
        }
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        yield monkeypatch


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(capsys, *argv: str) -> tuple[int, str]:
    status = main(list(argv) or ["run", "--http", "--host", "127.0.0.1", "--port", "0"])
    captured = capsys.readouterr()
    return status, captured.err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("migrate-bot:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_slack_refusing_the_bot_token_is_a_setting(world, capsys):
    world.setenv("SLACK_BOT_TOKEN", "xoxb-wrong-token")
    status, err = run(capsys)
    line = one_line(err)
    assert status == 2
    assert line.startswith("migrate-bot: configuration error: slack: auth.test refused SLACK_BOT_TOKEN (invalid_auth)")
    assert "xoxb-wrong-token" not in err


def test_slack_unreachable_is_exit_1(world, capsys):
    world.setenv("SLACK_API_URL", f"http://127.0.0.1:{closed_port()}/api/")
    status, err = run(capsys)
    line = one_line(err)
    assert status == 1
    assert "slack: cannot reach SLACK_API_URL" in line and "configuration error" not in line


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("garbage://x", "names an unknown database kind 'garbage'"),
        ("garbage", "DATABASE_URL is not a database URL"),
        ("mysql+pymysql://bot:db-secret-pw@127.0.0.1/bot", "needs the driver 'pymysql', which is not installed"),
    ],
)
def test_database_url_unusable_is_a_setting(world, capsys, tmp_path, url, said):
    world.setenv("DATABASE_URL", url)
    status, err = run(capsys)
    line = one_line(err)
    assert status == 2
    assert line.startswith("migrate-bot: configuration error: database: DATABASE_URL") and said in line
    assert "db-secret-pw" not in err


def test_database_unreachable_is_exit_1(world, capsys):
    world.setenv("DATABASE_URL", f"postgresql+psycopg://bot:db-secret-pw@127.0.0.1:{closed_port()}/bot")
    status, err = run(capsys)
    line = one_line(err)
    assert status == 1
    assert line.startswith("migrate-bot: database: cannot connect to DATABASE_URL postgresql+psycopg://bot:***@")
    assert "db-secret-pw" not in err


def test_a_sqlite_path_that_cannot_be_a_database_is_a_setting(world, capsys, tmp_path):
    (tmp_path / "folder.db").mkdir()
    world.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'folder.db'}")
    status, err = run(capsys)
    assert status == 2 and one_line(err).startswith("migrate-bot: configuration error: database: DATABASE_URL sqlite")


def test_credential_setting_missing_names_the_part(world, capsys):
    world.delenv("GRAPH_STATIC_TOKEN")
    world.setenv("AZURE_TENANT_ID", "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611")
    world.setenv("AZURE_CLIENT_ID", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
    status, err = run(capsys)
    assert status == 2
    assert one_line(err).startswith("migrate-bot: configuration error: credential: TOKEN_CACHE_KEY: missing")


def test_a_token_cache_the_key_does_not_decrypt_names_the_key(world, capsys, tmp_path):
    world.delenv("GRAPH_STATIC_TOKEN")
    world.setenv("AZURE_TENANT_ID", "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611")
    world.setenv("AZURE_CLIENT_ID", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
    world.setenv("TOKEN_CACHE_KEY", base64.b64encode(os.urandom(32)).decode())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "token-cache.bin").write_bytes(os.urandom(80))  # written with another key
    status, err = run(capsys)
    line = one_line(err)
    assert status == 2
    assert line.startswith("migrate-bot: configuration error: credential: token cache cannot be decrypted with")
    assert "TOKEN_CACHE_KEY" in line


def test_nobody_signed_in_is_no_start_up_failure(world, tmp_path):
    world.delenv("GRAPH_STATIC_TOKEN")
    world.setenv("AZURE_TENANT_ID", "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611")
    world.setenv("AZURE_CLIENT_ID", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
    world.setenv("TOKEN_CACHE_KEY", base64.b64encode(os.urandom(32)).decode())
    credential = admin_credential(load_settings())
    credential.close()
    assert not (tmp_path / "data" / "token-cache.bin").exists()


def test_application_certificate_unreadable_names_the_part(world, capsys, tmp_path):
    world.delenv("GRAPH_STATIC_TOKEN")
    world.setenv("GRAPH_AUTH_MODE", "application")
    world.setenv("AZURE_TENANT_ID", "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611")
    world.setenv("AZURE_CLIENT_ID", "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9")
    (tmp_path / "cert.pem").write_text("not a certificate")
    world.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(tmp_path / "cert.pem"))
    status, err = run(capsys)
    assert status == 2
    assert one_line(err).startswith("migrate-bot: configuration error: credential: AZURE_CLIENT_CERTIFICATE_PATH")


def test_socket_mode_without_an_app_token_names_the_setting(world, capsys):
    status, err = run(capsys, "run")
    assert status == 2
    assert one_line(err).startswith("migrate-bot: configuration error: slack: SLACK_APP_TOKEN: missing")


def test_socket_mode_refusing_the_app_token_is_a_setting(world, capsys):
    world.setenv("SLACK_APP_TOKEN", "xapp-wrong-token")
    status, err = run(capsys, "run", "--port", "0")
    line = one_line(err)
    assert status == 2
    assert line.startswith("migrate-bot: configuration error: slack: apps.connections.open refused SLACK_APP_TOKEN")
    assert "xapp-wrong-token" not in err


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_traceback_only_with_v(world, capsys, where):
    world.setenv("DATABASE_URL", "garbage://x")
    argv = ["run", "--http", "--port", "0"]
    status, err = run(capsys, *(["-v", *argv] if where == "before" else [*argv, "-v"]))
    assert status == 2
    assert "migrate-bot: configuration error: database:" in err and "Traceback" in err


def test_a_setting_that_does_not_load_is_one_line(world, capsys):
    world.setenv("METRICS_PORT", "not-a-port")
    status, err = run(capsys)
    assert status == 2 and one_line(err).startswith("migrate-bot: configuration error: METRICS_PORT:")
