"""``migrate-bot check`` end to end: the real CLI against the Slack stand-in, the Graph simulator, the fake
authority and real SQLite files. One line per check, ✓/✗, exit status, and never a secret in the output."""

from __future__ import annotations

import base64
import os
import socket

import pytest

from bot.cli.main import main
from bot.config import load_settings
from bot.credential.delegated import AdminCredential
from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.slack_standin import SlackStandIn
from bot.slack.scopes import BOT_SCOPES
from bot.store import Store
from tests.support.fake_authority import authority, credential_env, shared_authority  # noqa: F401 - fixtures

STATIC_TOKEN = "doctor-static-graph-token"
SIGNING_SECRET = "doctor-signing-secret-0123456789"
NAMES = ["config", "slack", "credential", "graph", "database"]


@pytest.fixture
def slack():
    with SlackStandIn(scopes=BOT_SCOPES) as standin:
        yield standin


@pytest.fixture
def sim():
    with GraphSimulator(clock=SimClock(speed=0), token=STATIC_TOKEN) as simulator:
        yield simulator


@pytest.fixture
def env(monkeypatch, slack, sim, tmp_path):
    """A healthy simulator rehearsal setup (HTTP mode); tests break one part at a time."""
    values = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "GRAPH_STATIC_TOKEN": STATIC_TOKEN,
        "GRAPH_BASE_URL": sim.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'bot.db'}",
        "OPS_CHANNEL": "C0OPS",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)

    def setenv(**changes):
        for name, value in changes.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return setenv


def check(capsys, *secrets, argv=("check", "--http")) -> tuple[int, dict[str, str], str]:
    """Run ``migrate-bot check`` (HTTP mode, like the env); returns the exit status, each check's line by name, and
    all output."""
    status = main(list(argv))
    captured = capsys.readouterr()
    output = captured.out + captured.err
    for secret in (STATIC_TOKEN, SIGNING_SECRET, "xoxb-standin", *secrets):
        assert secret not in output
    lines = {}
    for line in captured.out.splitlines():
        mark, _, rest = line.partition(" ")
        name = rest.split(" ", 1)[0]
        if mark in ("✓", "✗") and name in NAMES:
            lines[name] = line
    return status, lines, output


def marks(lines: dict[str, str]) -> dict[str, str]:
    return {name: line[0] for name, line in lines.items()}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- all good ------------------------------------------------------------------------------------------------------


def test_passes_against_the_simulator_and_the_stand_in(env, capsys, tmp_path):
    status, lines, output = check(capsys)
    assert status == 0
    assert list(lines) == NAMES and set(marks(lines).values()) == {"✓"}
    assert "✗" not in output and "5 of 5 checks passed" in output
    assert "migrate-bot in Migrate Stand-in" in lines["slack"] and "chat:write" in lines["slack"]
    assert "jobs on the first page" in lines["graph"]
    assert "does not exist yet" in lines["database"] and str(tmp_path / "data" / "bot.db") in lines["database"]
    assert not (tmp_path / "data").exists()  # check is read-only: no database file, no folder


# -- config --------------------------------------------------------------------------------------------------------


def test_settings_that_do_not_load_are_one_line_and_exit_2(env, capsys):
    env(SLACK_API_URL="ftp://slack.example")
    status, lines, output = check(capsys)
    assert status == 2
    assert list(lines) == ["config"] and lines["config"].startswith("✗")
    assert "SLACK_API_URL" in lines["config"] and "ftp://" not in output


def test_missing_settings_fail_the_config_check_and_the_rest_still_runs(env, capsys):
    env(SLACK_SIGNING_SECRET=None)  # neither SLACK_APP_TOKEN (Socket Mode) nor a signing secret (HTTP)
    status, lines, _ = check(capsys)
    assert status == 1
    assert marks(lines) == {"config": "✗", "slack": "✓", "credential": "✓", "graph": "✓", "database": "✓"}
    assert "SLACK_SIGNING_SECRET" in lines["config"]


# -- Slack ---------------------------------------------------------------------------------------------------------


def test_invalid_slack_token(env, capsys):
    env(SLACK_BOT_TOKEN="xoxb-not-the-right-one")
    status, lines, _ = check(capsys, "xoxb-not-the-right-one")
    assert status == 1
    assert marks(lines) == {"config": "✓", "slack": "✗", "credential": "✓", "graph": "✓", "database": "✓"}
    assert "invalid_auth" in lines["slack"] and "SLACK_BOT_TOKEN" in lines["slack"]


def test_missing_scopes_are_named(env, capsys, monkeypatch):
    lacking = SlackStandIn(scopes=[s for s in BOT_SCOPES if s not in ("channels:history", "groups:history")])
    with lacking:
        env(SLACK_API_URL=lacking.api_url)
        status, lines, _ = check(capsys)
    assert status == 1 and lines["slack"].startswith("✗")
    assert "channels:history, groups:history" in lines["slack"] and "manifest.yml" in lines["slack"]
    assert "chat:write," not in lines["slack"].split("lacks scopes")[1]


def test_unreachable_slack(env, capsys):
    env(SLACK_API_URL=f"http://127.0.0.1:{closed_port()}/api/")
    status, lines, _ = check(capsys)
    assert status == 1 and lines["slack"].startswith("✗") and "cannot reach Slack" in lines["slack"]
    assert lines["database"].startswith("✓")


# -- Graph ---------------------------------------------------------------------------------------------------------


def test_graph_unreachable(env, capsys):
    env(GRAPH_BASE_URL=f"http://127.0.0.1:{closed_port()}/beta")
    status, lines, _ = check(capsys)
    assert status == 1
    assert marks(lines) == {"config": "✓", "slack": "✓", "credential": "✓", "graph": "✗", "database": "✓"}
    assert "cannot reach Microsoft Graph" in lines["graph"] and "GRAPH_BASE_URL" in lines["graph"]


def test_graph_403_names_the_role(env, capsys, sim):
    sim.deny("list")
    status, lines, _ = check(capsys)
    assert status == 1 and lines["graph"].startswith("✗")
    assert "403" in lines["graph"] and "Migration Administrator" in lines["graph"]


def test_graph_401_with_the_static_token_names_it(env, capsys):
    env(GRAPH_STATIC_TOKEN="a-token-the-simulator-refuses")
    status, lines, _ = check(capsys, "a-token-the-simulator-refuses")
    assert status == 1 and lines["graph"].startswith("✗")
    assert "401" in lines["graph"] and "GRAPH_STATIC_TOKEN" in lines["graph"]


@pytest.mark.parametrize(
    ("preset", "ok", "expected"),
    [
        ("migration-admin", True, ""),
        ("app-reader", True, ""),  # listing needs only Read.All
        ("expired", False, "GRAPH_STATIC_TOKEN"),
        ("no-role", False, "Migration Administrator"),
    ],
)
def test_check_against_the_simulators_signed_tokens(env, capsys, sim, preset, ok, expected):
    token = sim.mint_token(preset)
    env(GRAPH_STATIC_TOKEN=token)
    status, lines, _ = check(capsys, token)
    assert lines["graph"].startswith("✓" if ok else "✗") and expected in lines["graph"]
    assert (status == 0) is ok


# -- database ------------------------------------------------------------------------------------------------------


def test_read_only_database(env, capsys, tmp_path):
    path = tmp_path / "ro" / "bot.db"
    Store.from_url(f"sqlite:///{path}").engine.dispose()
    env(DATABASE_URL=f"sqlite:///file:{path}?mode=ro&uri=true")
    status, lines, _ = check(capsys)
    assert status == 1
    assert marks(lines) == {"config": "✓", "slack": "✓", "credential": "✓", "graph": "✓", "database": "✗"}
    assert "not writable" in lines["database"] and "readonly" in lines["database"]
    assert not (tmp_path / "file:").exists()  # the URI's folder is the file's, not a folder named "file:"


def test_database_in_a_place_that_cannot_hold_one(env, capsys):
    env(DATABASE_URL="sqlite:////proc/migrate-bot.db")  # not writable even for root
    status, lines, _ = check(capsys)
    assert status == 1 and lines["database"].startswith("✗") and "DATABASE_URL" in lines["database"]


def test_database_password_is_not_printed(env, capsys):
    env(DATABASE_URL="postgresql+nosuchdriver://bot:hunter2-db-password@127.0.0.1:1/migrate")
    status, lines, _ = check(capsys, "hunter2-db-password")
    assert status == 1 and lines["database"].startswith("✗") and "***" in lines["database"]


def test_every_failure_is_reported_in_one_run(env, capsys, tmp_path):
    path = tmp_path / "ro2" / "bot.db"
    Store.from_url(f"sqlite:///{path}").engine.dispose()
    env(
        SLACK_BOT_TOKEN="xoxb-not-the-right-one",
        GRAPH_BASE_URL=f"http://127.0.0.1:{closed_port()}/beta",
        DATABASE_URL=f"sqlite:///file:{path}?mode=ro&uri=true",
    )
    status, lines, output = check(capsys, "xoxb-not-the-right-one")
    assert status == 1
    assert marks(lines) == {"config": "✓", "slack": "✗", "credential": "✓", "graph": "✗", "database": "✗"}
    assert "2 of 5 checks passed; fix: slack, graph, database" in output


# -- the real admin credential -------------------------------------------------------------------------------------


@pytest.fixture
def admin_env(env, authority, tmp_path, sim, monkeypatch):
    key = base64.b64encode(os.urandom(32)).decode()
    for name, value in credential_env(authority, tmp_path / "state", key).items():
        monkeypatch.setenv(name, value)
    env(GRAPH_STATIC_TOKEN=None)
    sim.token = None
    sim.trust_opaque_tokens = True  # the fake authority's opaque tokens: the simulator can't check them
    return key


def test_credential_not_signed_in(admin_env, capsys, authority):
    status, lines, _ = check(capsys, admin_env)
    assert status == 1
    assert marks(lines) == {"config": "✓", "slack": "✓", "credential": "✗", "graph": "✗", "database": "✓"}
    assert "run migrate-bot login" in lines["credential"] and "no_account" in lines["credential"]
    assert "not checked" in lines["graph"]


def test_credential_signed_in_passes(admin_env, capsys, authority):
    with AdminCredential(load_settings()) as cli:
        cli.login(show=lambda message: None)
    status, lines, _ = check(capsys, admin_env, *authority.secrets())
    assert status == 0
    assert "admin@contoso.example" in lines["credential"] and "delegated" in lines["credential"]
    assert lines["graph"].startswith("✓")


def test_credential_with_a_revoked_session(admin_env, capsys, authority):
    authority.access_token_lifetime = 60  # the next token() must redeem the refresh token
    with AdminCredential(load_settings()) as cli:
        cli.login(show=lambda message: None)
    authority.fail_next_refresh(50173)
    status, lines, _ = check(capsys, admin_env, *authority.secrets())
    assert status == 1 and lines["credential"].startswith("✗")
    assert "sessions were revoked" in lines["credential"] and "sessions_revoked" in lines["credential"]
    assert "AADSTS50173" in lines["credential"]


def test_graph_refusing_the_admin_token_says_login(admin_env, capsys, authority, sim):
    with AdminCredential(load_settings()) as cli:
        cli.login(show=lambda message: None)
    sim.token = "only-some-other-token"
    sim.trust_opaque_tokens = False
    status, lines, _ = check(capsys, admin_env, *authority.secrets())
    assert status == 1 and lines["credential"].startswith("✓") and lines["graph"].startswith("✗")
    assert "401" in lines["graph"] and "run migrate-bot login" in lines["graph"]


# -- the transport, the output, and files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "missing"),
    [((), "SLACK_APP_TOKEN"), (("--socket",), "SLACK_APP_TOKEN"), (("--http",), "SLACK_SIGNING_SECRET")],
)
def test_check_and_run_name_the_same_missing_setting(env, capsys, flags, missing):
    env(SLACK_SIGNING_SECRET=None)  # only the bot token
    status, lines, _ = check(capsys, argv=("check", *flags))
    assert status == 1 and missing in lines["config"]
    run_status = main(["run", *flags, "--port", "0"])
    err = capsys.readouterr().err
    assert run_status == 2 and f"slack: {missing}: missing" in err


def test_check_prints_only_its_own_lines_even_with_v(env, capsys):
    env(SLACK_BOT_TOKEN="xoxb-not-the-right-one")  # slack_sdk logs a refused call at DEBUG and ERROR
    status = main(["-v", "check", "--http"])
    captured = capsys.readouterr()
    assert status == 1
    lines = (captured.out + captured.err).strip().splitlines()
    assert all(line[:2] in ("✓ ", "✗ ") for line in lines[:-1]) and lines[-1].startswith("4 of 5 checks passed")
    assert len(lines) == 6


def test_check_shows_the_data_folder_and_never_creates_it(env, capsys, tmp_path):
    env(DATABASE_URL=None, MIGRATE_BOT_DATA_DIR=str(tmp_path / "typo-folder" / "data"))
    status, lines, _ = check(capsys)
    assert status == 0
    assert f"data folder {tmp_path / 'typo-folder' / 'data'}" in lines["config"]
    assert str(tmp_path / "typo-folder" / "data" / "migrate-bot.db") in lines["database"]
    assert "does not exist yet" in lines["database"]
    assert not (tmp_path / "typo-folder").exists()


def test_check_opens_an_existing_database_read_only(env, capsys, tmp_path):
    path = tmp_path / "data" / "bot.db"
    Store.from_url(f"sqlite:///{path}").engine.dispose()
    before = sorted(p.name for p in path.parent.iterdir())
    status, lines, _ = check(capsys)
    assert status == 0 and "opens and is writable; its tables exist" in lines["database"]
    assert sorted(p.name for p in path.parent.iterdir()) == before  # no -wal, -shm or journal left behind


def test_the_default_data_folder_does_not_depend_on_the_working_directory(env, capsys, tmp_path, monkeypatch):
    env(DATABASE_URL=None)
    outputs = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        outputs.append(check(capsys)[1]["database"])
    assert outputs[0] == outputs[1] and str(tmp_path / "xdg-data" / "migrate-bot") in outputs[0]


def test_an_unreachable_postgresql_is_reported_without_its_password(env, capsys):
    env(DATABASE_URL=f"postgresql+psycopg://bot:hunter2-db-password@127.0.0.1:{closed_port()}/migrate")
    status, lines, _ = check(capsys, "hunter2-db-password")
    assert status == 1 and lines["database"].startswith("✗")
    assert "does not open" in lines["database"] and "bot:***@127.0.0.1" in lines["database"]


def test_check_with_nobody_signed_in_creates_no_state_folder(admin_env, capsys, tmp_path):
    env_dir = tmp_path / "state"
    status, lines, _ = check(capsys, admin_env)
    assert status == 1 and "no_account" in lines["credential"]
    assert not env_dir.exists() and not (tmp_path / "data").exists()


def test_a_database_left_in_the_old_default_folder_is_pointed_out(env, capsys, tmp_path):
    env(DATABASE_URL=None)
    Store.from_url(f"sqlite:///{tmp_path / 'data' / 'migrate-bot.db'}").engine.dispose()  # ./data: the old default
    status, lines, _ = check(capsys)
    assert status == 0
    assert f"MIGRATE_BOT_DATA_DIR={tmp_path / 'data'} to keep using it" in lines["database"]
    env(MIGRATE_BOT_DATA_DIR=str(tmp_path / "data"))
    assert "older database" not in check(capsys)[1]["database"]
