"""A whole migrate-bot world on loopback: the Graph simulator, the Slack stand-in, and the bot in HTTP mode.

Used by ``migrate-bot demo``, the end-to-end tests and the benchmarks. Nothing here reaches the network.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.app import MigrateBot
from bot.config import Settings
from bot.credential.base import StaticToken, TokenSource
from bot.httpserver import WSGIServer
from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.slack_standin import SlackSender, SlackStandIn
from bot.slack.scopes import BOT_SCOPES
from bot.store import Run

CHANNEL = "C0MIGRATE"
REQUESTER = "U0ALICE"
APPROVER = "U0BOB"
OUTSIDER = "U0EVE"
MIGRATORS = "S0MIGRATORS"
APPROVERS = "S0APPROVERS"
SIM_TOKEN = "sandbox-graph-token"


class SandboxSettings(Settings):
    """Settings from the sandbox alone: the operator's environment and ``.env`` never leak in."""

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings,)


@dataclass
class Sandbox:
    """Start with :meth:`start` (or ``with Sandbox() as world``); ``settings`` overrides any setting."""

    data_dir: Path | None = None
    sim_speed: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    seed: bool = True

    def start(self) -> Sandbox:
        self._tmp = None
        if self.data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="migrate-bot-")
            self.data_dir = Path(self._tmp.name)
        self.sim = GraphSimulator(clock=SimClock(speed=self.sim_speed), seed=self.seed, token=SIM_TOKEN).start()
        self.slack = SlackStandIn(scopes=frozenset(BOT_SCOPES)).start()
        self._populate_workspace()
        self.signing_secret = secrets.token_hex(16)
        self.bot_settings = self.build_settings()
        self.bot: MigrateBot | None = None
        self.server: WSGIServer | None = None
        self.start_bot()
        return self

    def build_settings(self) -> Settings:
        values: dict[str, Any] = {
            "slack_bot_token": self.slack.bot_token,
            "slack_signing_secret": self.signing_secret,
            "slack_api_url": self.slack.api_url,
            "graph_base_url": self.sim.base_url,
            "data_dir": self.data_dir,
            "database_url": f"sqlite:///{self.data_dir / 'sandbox.db'}",
            "poll_interval_seconds": 0.5,
            "allowed_slack_users": [],
            "migrators_usergroup": MIGRATORS,
            "approvers_usergroup": APPROVERS,
            "require_approval": True,
            "admin_mention": APPROVERS,
        }
        values.update(self.settings)
        return SandboxSettings(**values)

    def _populate_workspace(self) -> None:
        self.slack.add_channel(CHANNEL, "migrations", members=[REQUESTER, APPROVER, OUTSIDER])
        self.slack.add_user(REQUESTER, "alice", real_name="Alice Admin")
        self.slack.add_user(APPROVER, "bob", real_name="Bob Approver")
        self.slack.add_user(OUTSIDER, "eve", real_name="Eve Outsider")
        self.slack.add_usergroup(MIGRATORS, "migrators", [REQUESTER, APPROVER])
        self.slack.add_usergroup(APPROVERS, "migration-approvers", [APPROVER])

    def start_bot(self, tokens: TokenSource | None = None) -> MigrateBot:
        """(Re)start the bot process on the same database, as after a crash or a deploy. ``tokens``: another
        token source than the simulator's static token (e.g. a real credential; then set ``sim.token = None``)."""
        self.bot = MigrateBot(self.bot_settings, tokens=tokens or StaticToken(SIM_TOKEN))
        self.bot.start()
        self.server = self.bot.http_server("127.0.0.1", 0).start()
        self.sender = SlackSender(self.server.url, self.signing_secret, self.slack)
        return self.bot

    def stop_bot(self) -> None:
        """Stop the bot abruptly (scheduler, workers, HTTP) but keep Graph, Slack and the database."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.bot is not None:
            self.bot.close()
            self.bot = None

    def stop(self) -> None:
        self.stop_bot()
        self.slack.stop()
        self.sim.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Story steps
    def open_modal(self, job_id: str, user_id: str = REQUESTER, timeout: float = 10.0) -> dict:
        """``/migrate <job_id>``, then wait until the modal shows the live job; returns the view."""
        updates_before = len(self.slack.calls_to("views.update"))
        sent = self.sender.slash_command(job_id, user_id=user_id, channel_id=CHANNEL)
        assert sent.response.status_code == 200, sent.response.text
        self.slack.wait_for("views.update", count=updates_before + 1, timeout=timeout)
        opened = self.slack.calls_to("views.open")[-1]
        return self.slack.view(opened.response["view"]["id"])

    def submit_modal(self, view: dict, reason: str, user_id: str = REQUESTER) -> Any:
        return self.sender.view_submission(
            view["id"], user_id=user_id, values={"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
        )

    def run_for(self, job_id: str) -> Run | None:
        """The job's newest run (any state)."""
        assert self.bot is not None
        runs = self.bot.store.runs_for_job(job_id, limit=1)
        return runs[0] if runs else None

    def wait_until(self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        raise TimeoutError(f"timed out waiting for {what}")
