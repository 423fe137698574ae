"""``migrate-bot db upgrade | current`` and the schema checks of ``run``, on SQLite (PostgreSQL: test_pg_store)."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys

import pytest
from sqlalchemy import create_engine, text

from bot.cli.db import db_command
from bot.cli.doctor import check_database
from bot.cli.main import main
from bot.config import load_settings
from bot.db import schema
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS
from bot.store import RunState, Store

PREVIOUS_RELEASE_SQLITE = (  # what the release before Alembic made (its create_all and triggers)
    "CREATE TABLE runs (id INTEGER NOT NULL PRIMARY KEY, job_id VARCHAR(36) NOT NULL, job_name VARCHAR(512) NOT NULL,"
    " action VARCHAR(16) NOT NULL, state VARCHAR(16) NOT NULL, team_id VARCHAR(32), channel_id VARCHAR(32) NOT NULL,"
    " root_ts VARCHAR(32), root_pending BOOLEAN NOT NULL, requester_id VARCHAR(32) NOT NULL, reason TEXT NOT NULL,"
    " approver_id VARCHAR(32), decision_note TEXT, created_at DATETIME NOT NULL, decided_at DATETIME,"
    " started_at DATETIME, finished_at DATETIME, last_status VARCHAR(64), last_message TEXT, last_job_update DATETIME,"
    " last_seen_change_at DATETIME, posted_status VARCHAR(64), posted_message TEXT, poll_failures INTEGER NOT NULL,"
    " trouble_warned BOOLEAN NOT NULL, stale_warned BOOLEAN NOT NULL, final_notice VARCHAR(16),"
    " final_notice_ts VARCHAR(32), outcome VARCHAR(64), note TEXT, reply_pending TEXT, parent_run_id INTEGER)",
    "CREATE INDEX ix_runs_job_id ON runs (job_id)",
    "CREATE UNIQUE INDEX one_active_run_per_job ON runs (job_id)"
    " WHERE state IN ('pending', 'starting', 'running') AND action <> 'cancel'",
    "CREATE UNIQUE INDEX one_active_cancel_per_job ON runs (job_id)"
    " WHERE state IN ('pending', 'starting', 'running') AND action = 'cancel'",
    "CREATE TABLE audit_events (id INTEGER NOT NULL PRIMARY KEY, at DATETIME NOT NULL, job_id VARCHAR(36) NOT NULL,"
    " run_id INTEGER, event VARCHAR(32) NOT NULL, actor VARCHAR(32) NOT NULL, graph_request_id VARCHAR(64),"
    " detail TEXT NOT NULL)",
    "CREATE TABLE bot_meta (key VARCHAR(64) NOT NULL PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events"
    " BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END",
    "INSERT INTO runs (job_id, job_name, action, state, channel_id, root_pending, requester_id, reason, created_at,"
    f" poll_failures, trouble_warned, stale_warned) VALUES ('{SEED_IN_PROGRESS}', 'wave', 'migrate', 'running', 'C1',"
    " 0, 'U1', 'r', '2026-11-01 10:00:00', 0, 0, 0)",
)


def db(action: str) -> tuple[int, str]:
    out = io.StringIO()
    status = db_command(argparse.Namespace(action=action), load_settings(), out=out)
    return status, out.getvalue()


@pytest.fixture
def url(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/bot.db"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


def test_upgrade_makes_an_empty_database_and_current_says_so(url):
    assert db("current") == (1, f"{url}: no revision (empty); run migrate-bot db upgrade (newest: {schema.head()})\n")
    status, said = db("upgrade")
    assert status == 0 and f"revision {schema.head()} (was none)" in said
    assert db("current") == (0, f"{url}: revision {schema.head()}\n")


def test_upgrade_adopts_a_database_made_by_the_previous_release(url):
    engine = create_engine(url)
    with engine.begin() as connection:
        for statement in PREVIOUS_RELEASE_SQLITE:
            connection.execute(text(statement))
    assert db("current")[1].endswith(
        f"no revision (made before schema migrations); run migrate-bot db upgrade (newest: {schema.head()})\n"
    )
    status, said = db("upgrade")
    assert status == 0 and said.startswith("adopted the database made before schema migrations as revision 0001")
    store = Store(engine)
    [run] = store.runs_in(RunState.RUNNING)
    assert run.job_name == "wave"
    assert store.first_delivery("command:T1")
    assert db("current")[0] == 0


def test_a_schema_newer_than_this_release_is_named_and_run_refuses_it(url, capsys):
    assert db("upgrade")[0] == 0
    with create_engine(url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    assert db("current") == (1, f"{url}: revision 9999, newer than this release knows ({schema.head()})\n")
    assert main(["db", "upgrade"]) == 1
    assert "revision 9999, newer than this release knows" in capsys.readouterr().err


def test_a_second_process_on_the_same_sqlite_file_refuses_to_start(tmp_path, url):
    env = {"MIGRATE_BOT_DATA_DIR": str(tmp_path), "DATABASE_URL": url, "PATH": "/usr/bin:/bin"}
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom bot.db.sqlite_lock import lock_sqlite\n"
            f"held = lock_sqlite({url!r}); print('held', flush=True); sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(
            [sys.executable, "-m", "bot", "run", "--http", "--port", "0"],
            env={
                **env,
                "SLACK_BOT_TOKEN": "xoxb-x",
                "SLACK_SIGNING_SECRET": "s",
                "GRAPH_STATIC_TOKEN": "t",
                "GRAPH_BASE_URL": "http://127.0.0.1:9/beta",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert second.returncode == 1
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert lines == [
        f"migrate-bot: another migrate-bot is already running on {tmp_path}/bot.db (it holds {tmp_path}/bot.db.lock);"
        " stop it, or run several replicas on PostgreSQL (DATABASE_URL=postgresql+psycopg://...)"
    ]


def test_the_doctor_names_a_schema_newer_than_this_release(url):
    assert db("upgrade")[0] == 0
    with create_engine(url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    check = check_database(load_settings())
    assert not check.ok and "revision 9999, newer than this release knows" in check.detail
