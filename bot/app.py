"""The composition root: the one place that builds and wires everything."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from bot.config import Settings
from bot.credential.base import StaticToken, TokenSource
from bot.credential.factory import build_credential
from bot.credential.health import CredentialHealth
from bot.graph.client import GraphClient
from bot.httpserver import WSGIServer
from bot.store import Store, utcnow
from bot.workflow.ackfirst import AckFirst
from bot.workflow.approvals import Approvals
from bot.workflow.flow import MigrationFlow
from bot.workflow.policy import Policy, UsergroupMembers
from bot.workflow.poller import Poller
from bot.workflow.reports import Reports
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers
from handlers import register

log = logging.getLogger(__name__)

WORKER_THREADS = 16  # Graph calls and posting after an ack
PROMPT_THREADS = 8  # views.open with a fresh trigger_id: never queued behind Graph
HTTP_THREADS = 32
APPROVAL_SWEEP_SECONDS = 60
STARTING_GRACE = timedelta(minutes=5)  # longer than any Graph action call with its re-read and retries


def build_slack_client(settings: Settings) -> WebClient:
    """The Web API client: ``SLACK_API_URL``, waits out 429s and retries dropped connections.

    No retry on 5xx: a retried ``chat.postMessage`` could post twice.
    """
    assert settings.slack_bot_token is not None
    return WebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        timeout=15,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5), ConnectionErrorRetryHandler(max_retry_count=2)],
    )


class MigrateBot:
    """Everything the bot runs, built from settings. ``tokens`` overrides the admin credential (simulator)."""

    def __init__(
        self, settings: Settings, *, tokens: TokenSource | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.settings = settings
        self.slack = build_slack_client(settings)
        identity = self.slack.auth_test()
        self.team_id: str | None = identity.get("team_id")
        self.bot_user_id: str | None = identity.get("user_id")
        self.store = Store.from_url(settings.resolved_database_url)
        if tokens is None and settings.graph_static_token is not None:
            tokens = StaticToken(settings.graph_static_token.get_secret_value())
        if tokens is None:
            tokens = build_credential(settings)
        self.tokens = tokens
        # GraphClient gets the wrapped source: credential failures alert OPS_CHANNEL once per episode
        self.health = CredentialHealth(
            tokens, slack=self.slack, store=self.store, channel=settings.ops_channel, clock=clock
        )
        self.graph = GraphClient(settings.graph_base_url, self.health)
        self.ack_first = AckFirst()  # work after an ack waits (briefly) while Slack requests are answered
        self.workers = Workers(WORKER_THREADS, "work", yield_to=self.ack_first)
        self.prompt = Workers(PROMPT_THREADS, "prompt", yield_to=self.ack_first)
        self.policy = Policy(
            groups=UsergroupMembers(self.slack),
            team_id=self.team_id,
            allowed_users=frozenset(settings.allowed_slack_users),
            migrators_group=settings.migrators_usergroup,
            allowed_channels=frozenset(settings.allowed_channels),
            require_approval=settings.require_approval,
            approvers=frozenset(settings.approvers),
            approvers_group=settings.approvers_usergroup,
            allow_self_approval=settings.allow_self_approval,
        )
        self.tracker = Poller(
            self.store,
            self.graph,
            self.slack,
            interval=settings.poll_interval_seconds,
            stale_after=timedelta(hours=settings.stale_after_hours),
            admin_mention=settings.admin_mention,
            clock=clock,
        )
        self.flow = MigrationFlow(
            graph=self.graph,
            slack=self.slack,
            store=self.store,
            policy=self.policy,
            work=self.workers,
            tracker=self.tracker,
            clock=clock,
        )
        self.approvals = Approvals(
            flow=self.flow,
            graph=self.graph,
            slack=self.slack,
            store=self.store,
            policy=self.policy,
            ttl=timedelta(hours=settings.approval_ttl_hours),
            clock=clock,
        )
        self.flow.approvals = self.approvals
        self.reports = Reports(graph=self.graph, slack=self.slack, store=self.store, policy=self.policy, clock=clock)
        self.app = App(
            client=self.slack,
            signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
            token_verification_enabled=False,
            # Listeners only parse, ack and submit (handlers/__init__.py): answering when they return saves
            # Bolt's executor hop and its 10 ms ack polling loop.
            process_before_response=True,
        )
        self.whoami = Whoami(
            health=self.health, policy=self.policy, slack=self.slack, graph_base_url=settings.graph_base_url
        )
        register(
            self.app,
            flow=self.flow,
            approvals=self.approvals,
            policy=self.policy,
            workers=self.workers,
            prompt=self.prompt,
            reports=self.reports,
            whoami=self.whoami,
        )

    # Lifecycle
    def start(self) -> None:
        """Start background work: the poller resumes every unfinished run from the database, and
        overdue approval requests are expired every minute."""
        self.tracker.start()
        self.workers.submit(
            self.policy.groups.warm, self.settings.migrators_usergroup, self.settings.approvers_usergroup
        )
        started = self.flow.clock()
        self.workers.submit(self.flow.reconcile_interrupted, started_before=started)
        self.tracker.scheduler.add_job(
            self._reconcile_unsettled,
            "interval",
            seconds=APPROVAL_SWEEP_SECONDS,
            id="reconcile-starting",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        self.tracker.scheduler.add_job(
            self.approvals.expire_overdue,
            "interval",
            seconds=APPROVAL_SWEEP_SECONDS,
            id="expire-approvals",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        self.health.schedule(self.tracker.scheduler)  # daily silent refresh of the admin credential

    def _reconcile_unsettled(self) -> None:
        """Runs whose Graph action had an unclear outcome: settle them once no live call can still be running."""
        self.flow.reconcile_interrupted(started_before=self.flow.clock() - STARTING_GRACE)

    def close(self) -> None:
        """Stop polling and background work, then close the Graph and credential HTTP clients."""
        self.tracker.shutdown()
        self.prompt.shutdown(wait=False)
        self.workers.shutdown(wait=False)
        self.graph.close()
        close_credential = getattr(self.tokens, "close", None)
        if callable(close_credential):
            close_credential()

    # HTTP mode
    def wsgi_app(self) -> Callable[[dict, Callable], Iterable[bytes]]:
        """``POST /slack/events`` (signature-verified by Bolt) and ``GET /healthz``."""
        slack_handler = SlackRequestHandler(self.app, path="/slack/events")

        def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
                body = json.dumps({"ok": True, "team_id": self.team_id}).encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                return [body]
            with self.ack_first.answering():
                return slack_handler(environ, start_response)

        return application

    def http_server(self, host: str, port: int) -> WSGIServer:
        return WSGIServer(self.wsgi_app(), host, port, threads=HTTP_THREADS)

    # Socket Mode
    def socket_mode_handler(self) -> Any:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert self.settings.slack_app_token is not None
        return SocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())
