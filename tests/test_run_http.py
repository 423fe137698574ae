"""`migrate-bot run --http` as operators run it: a separate process, cheroot, signed requests, SIGTERM."""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time

import httpx

from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin import SlackSender, SlackStandIn
from bot.slack.scopes import BOT_SCOPES


def test_http_mode_serves_slack_and_stops_on_sigterm(tmp_path):
    secret = secrets.token_hex(16)
    with (
        GraphSimulator(clock=SimClock(speed=0), token="rehearsal") as sim,
        SlackStandIn(scopes=frozenset(BOT_SCOPES)) as slack,
    ):
        slack.add_channel("C1", "migrations")
        slack.add_user("U1", "alice")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("SLACK_", "AZURE_", "GRAPH_", "TOKEN_"))
        }
        env.update(
            {
                "SLACK_BOT_TOKEN": slack.bot_token,
                "SLACK_SIGNING_SECRET": secret,
                "SLACK_API_URL": slack.api_url,
                "GRAPH_BASE_URL": sim.base_url,
                "GRAPH_STATIC_TOKEN": "rehearsal",
                "ALLOWED_SLACK_USERS": "U1",
                "REQUIRE_APPROVAL": "false",
                "MIGRATE_BOT_DATA_DIR": str(tmp_path / "data"),
            }
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--http", "--host", "127.0.0.1", "--port", "0"],
            env=env,
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            url = None
            deadline = time.monotonic() + 30
            log = []
            while url is None and time.monotonic() < deadline:
                line = process.stderr.readline()
                log.append(line)
                match = re.search(r"serving Slack on (http://[\d.:]+)/slack/events", line)
                url = match.group(1) if match else None
            assert url, "".join(log)
            assert httpx.get(url + "/healthz").json()["ok"] is True
            with SlackSender(url, secret, slack) as sender:
                sent = sender.slash_command(SEED_VALIDATE_PASSED, user_id="U1", channel_id="C1")
                assert sent.status_code == 200
                [update] = slack.wait_for("views.update", timeout=15)
                assert "wave3_finance" in str(update.args)
                assert (
                    sender.slash_command(
                        SEED_VALIDATE_PASSED, user_id="U1", channel_id="C1", bad_signature=True
                    ).status_code
                    == 401
                )
            assert not slack.violations, slack.violations  # every ack within Slack's 3 s
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            remaining = process.stderr.read()
            for secret_value in (secret, slack.bot_token, "rehearsal"):
                assert secret_value not in "".join(log) + remaining
        finally:
            if process.poll() is None:
                process.kill()
