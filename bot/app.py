"""The composition root of the running bot: the one place that builds and wires everything, through the factory
functions of :mod:`bot.factories` (which the CLI commands use too)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.config import Settings
from bot.credential.base import TokenSource
from bot.credential.health import CredentialHealth
from bot.factories import (
    build_graph,
    build_policy,
    build_poll_pool,
    build_scheduler,
    build_slack_client,
    build_store,
    build_tokens,
)
from bot.graph.directory import PERMISSION, UserDirectory
from bot.httpserver import WSGIServer
from bot.ops.metrics import Metrics
from bot.ops.startup import older_database_note, shown_url, slack_identity
from bot.slack.http_entry import guarded
from bot.store import RunState, utcnow
from bot.workflow.access import Checkpoint
from bot.workflow.approvals import Approvals
from bot.workflow.flow import MigrationFlow
from bot.workflow.poller import Poller
from bot.workflow.reports import Reports
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers
from handlers import register
from handlers.observe import ObservedApp

log = logging.getLogger(__name__)

WORKER_THREADS = 16  # Graph calls and posting after an ack
PROMPT_THREADS = 8  # views.open with a fresh trigger_id: never queued behind Graph
HTTP_THREADS = 32
APPROVAL_SWEEP_SECONDS = 60
SETTLE_SECONDS = 5  # how soon an action Graph accepted is recorded once the database takes writes again
STARTING_GRACE = timedelta(minutes=5)  # longer than any Graph action call with its re-read and retries


class MigrateBot:
    """Everything the bot runs, built from settings. ``tokens`` overrides the admin credential (simulator);
    ``metrics``: where the series go (a fresh registry when None)."""

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: TokenSource | None = None,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics if metrics is not None else Metrics()
        self.slack = build_slack_client(settings, on_call=self.metrics.slack_call)
        identity = slack_identity(self.slack, settings.slack_api_url)
        self.team_id: str | None = identity.get("team_id")
        self.bot_user_id: str | None = identity.get("user_id")
        self.enterprise_id: str | None = identity.get("enterprise_id")
        self.store = build_store(settings)
        self.tokens = tokens if tokens is not None else build_tokens(settings)
        # GraphClient gets the wrapped source: credential failures alert OPS_CHANNEL once per episode
        self.health = CredentialHealth(
            self.tokens, slack=self.slack, store=self.store, channel=settings.ops_channel, clock=clock
        )
        self.graph = build_graph(settings, self.health, observe=self.metrics.graph_request)
        self.directory = UserDirectory(self.graph, permission=PERMISSION[settings.graph_auth_mode])
        self.workers = Workers(WORKER_THREADS, "work")
        self.prompt = Workers(PROMPT_THREADS, "prompt")
        self.policy = build_policy(settings, self.slack, self.team_id)
        self.scheduler = build_scheduler()  # the poller's sweep and every periodic job below
        self.tracker = Poller(
            self.store,
            self.graph,
            self.slack,
            interval=settings.poll_interval_seconds,
            stale_after=timedelta(hours=settings.stale_after_hours),
            admin_mention=settings.admin_mention,
            clock=clock,
            scheduler=self.scheduler,
            pool=build_poll_pool(),
            on_sweep=self.metrics.sweep,
            directory=self.directory,
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
        self.reports = Reports(
            graph=self.graph, slack=self.slack, store=self.store, clock=clock, directory=self.directory
        )
        self.checkpoint = Checkpoint(
            policy=self.policy,
            store=self.store,
            slack=self.slack,
            team_id=self.team_id,
            enterprise_id=self.enterprise_id,
        )
        self.app = ObservedApp(
            on_ack=self.metrics.ack,
            client=self.slack,
            signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None,
            token_verification_enabled=False,
            # Listeners only parse, ack and submit (handlers/__init__.py): answering when they return saves
            # Bolt's executor hop and its 10 ms ack polling loop.
            process_before_response=True,
        )
        self.whoami = Whoami(health=self.health, slack=self.slack, graph_base_url=settings.graph_base_url)
        self.metrics.watch_runs(self.store.count_by_state, [state.value for state in RunState])
        self.metrics.watch_credential(self.health.state)
        register(
            self.app,
            flow=self.flow,
            approvals=self.approvals,
            checkpoint=self.checkpoint,
            workers=self.workers,
            prompt=self.prompt,
            reports=self.reports,
            whoami=self.whoami,
        )

    # Lifecycle
    def start(self) -> None:
        """Start background work: the poller resumes every unfinished run from the database, and
        overdue approval requests are expired every minute."""
        log.info("data folder %s; database %s", self.settings.data_dir, shown_url(self.settings.resolved_database_url))
        older = older_database_note(self.settings)
        if older is not None:
            log.warning("%s", older)
        problem = self.health.check_admin()
        if problem is not None:
            log.warning("%s (until then /migrate answers with that command)", problem)
        self.tracker.start()
        self.workers.submit(
            self.policy.groups.warm, self.settings.migrators_usergroup, self.settings.approvers_usergroup
        )
        started = self.flow.clock()
        self.workers.submit(self.flow.reconcile_interrupted, started_before=started)
        self.scheduler.add_job(
            self._reconcile_unsettled,
            "interval",
            seconds=APPROVAL_SWEEP_SECONDS,
            id="reconcile-starting",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self.flow.settle_unrecorded,
            "interval",
            seconds=min(SETTLE_SECONDS, self.settings.poll_interval_seconds),
            id="settle-unrecorded",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self.approvals.expire_overdue,
            "interval",
            seconds=APPROVAL_SWEEP_SECONDS,
            id="expire-approvals",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        self.health.schedule(self.scheduler)  # daily silent refresh of the admin credential

    def _reconcile_unsettled(self) -> None:
        """Runs whose Graph action had an unclear outcome: settle them once no live call can still be running."""
        self.flow.reconcile_interrupted(started_before=self.flow.clock() - STARTING_GRACE)

    def close(self) -> None:
        """Stop polling and background work (the poller stops the scheduler and its pool), then close the Graph
        and credential HTTP clients."""
        self.tracker.shutdown()
        self.prompt.shutdown(wait=False)
        self.workers.shutdown(wait=False)
        self.graph.close()
        close_credential = getattr(self.tokens, "close", None)
        if callable(close_credential):
            close_credential()

    # HTTP mode
    def wsgi_app(self) -> Callable[[dict, Callable], Iterable[bytes]]:
        """``POST /slack/events`` (size and signature checked before Bolt parses, :mod:`bot.slack.http_entry`),
        ``GET /healthz`` and ``GET /metrics``."""
        secret = self.settings.slack_signing_secret
        slack_handler = guarded(
            SlackRequestHandler(self.app, path="/slack/events"), secret.get_secret_value() if secret else None
        )
        operations = self.operations_app()

        def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/slack/events":
                return slack_handler(environ, start_response)
            return operations(environ, start_response)

        return application

    def operations_app(self) -> Callable[[dict, Callable], Iterable[bytes]]:
        """``GET /healthz`` and ``GET /metrics`` (Prometheus text); 404 for anything else."""

        def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
            path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
            if method not in ("GET", "HEAD") or path not in ("/healthz", "/metrics"):
                body, status, kind = b"not found\n", "404 Not Found", "text/plain"
            elif path == "/metrics":
                (body, kind), status = self.metrics.render(), "200 OK"
            else:
                problem = self.store.healthy()  # a bot that can't record anything is not healthy
                body = json.dumps({"ok": problem is None, "team_id": self.team_id, "database": problem or "ok"})
                status = "200 OK" if problem is None else "503 Service Unavailable"
                body, kind = body.encode(), "application/json"
            start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
            return [b"" if method == "HEAD" else body]

        return application

    def metrics_server(self, host: str, port: int) -> WSGIServer:
        """``/metrics`` and ``/healthz`` on their own port (``METRICS_PORT``; Socket Mode has no HTTP port)."""
        return WSGIServer(self.operations_app(), host, port, threads=2)

    def http_server(self, host: str, port: int) -> WSGIServer:
        return WSGIServer(self.wsgi_app(), host, port, threads=HTTP_THREADS)

    # Socket Mode
    def socket_mode_handler(self) -> Any:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert self.settings.slack_app_token is not None
        return SocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())
