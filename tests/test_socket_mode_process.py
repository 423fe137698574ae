"""``migrate-bot run`` in Socket Mode as a process: the health port, and SIGTERM (ready no more, then gone)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin import SlackSender, SlackStandIn
from bot.rehearsal.slack_standin.socket_mode import SocketModeServer
from bot.slack.scopes import BOT_SCOPES


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_socket_mode_process_serves_readiness_on_its_health_port_and_stops_on_sigterm(tmp_path):
    with (
        GraphSimulator(clock=SimClock(speed=0), token="rehearsal") as sim,
        SlackStandIn(scopes=frozenset(BOT_SCOPES)) as slack,
        SocketModeServer(app_id=slack.app_id) as socket,
    ):
        slack.socket_mode_url = socket.url
        slack.add_channel("C1", "migrations")
        slack.add_user("U1", "alice")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SLACK_", "AZURE_", "GRAPH_", "TOKEN_", "DATABASE_", "MIGRATE_BOT_"))
        }
        env.update(
            {
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_APP_TOKEN": slack.app_token,
                "SLACK_API_URL": slack.api_url,
                "GRAPH_BASE_URL": sim.base_url,
                "GRAPH_STATIC_TOKEN": "rehearsal",
                "ALLOWED_SLACK_USERS": "U1",
                "MIGRATE_BOT_DATA_DIR": str(tmp_path / "data"),
            }
        )
        log_path = tmp_path / "bot.log"
        with log_path.open("w") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot", "run", "--host", "127.0.0.1", "--health-port", "0"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
            try:
                match = wait_for(
                    lambda: re.search(r"readiness on (http://[\d.:]+)/readyz", log_path.read_text()), what="health"
                )
                health = match.group(1)
                socket.wait_connected()
                assert httpx.get(health + "/readyz").json() == {
                    "ready": True,
                    "draining": False,
                    "database": "ok",
                    "credential": "static",  # GRAPH_STATIC_TOKEN: no admin credential to report on
                    "role": "leader",
                }
                fields = SlackSender("http://127.0.0.1:9", "unused", slack).slash_command_fields(
                    SEED_VALIDATE_PASSED, user_id="U1", channel_id="C1"
                )
                socket.wait_ack(socket.send("slash_commands", fields))
                slack.wait_for("views.update", timeout=15)

                sim.latency = 2.0  # work in flight at SIGTERM: the process drains it, not ready all the while
                socket.wait_ack(socket.send("slash_commands", dict(fields, trigger_id=slack.issue_trigger("U1"))))
                wait_for(lambda: sim.count("GET") >= 2, what="the second Graph read to be in flight")
                stopping = time.monotonic()
                process.send_signal(signal.SIGTERM)
                wait_for(lambda: httpx.get(health + "/readyz").status_code == 503, timeout=2, what="/readyz 503")
                assert process.wait(10) == 0
                assert time.monotonic() - stopping < 10
                wait_for(lambda: not socket._connections, timeout=5, what="the Socket Mode connection to close")
            except BaseException:
                print(log_path.read_text())  # the bot's log, for the failure report
                raise
            finally:
                if process.poll() is None:
                    process.kill()
        log = log_path.read_text()
        assert "shutting down: not ready" in log and "stopped" in log
        assert slack.bot_token not in log and slack.app_token not in log
