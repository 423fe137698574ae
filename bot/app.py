"""The composition root of the running bot: the one place that builds and wires everything, through the factory
functions of :mod:`bot.factories` (which the CLI commands use too)."""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.change_store import ChangeStore
from bot.config import Settings
from bot.credential.base import TokenSource
from bot.credential.health import CredentialHealth
from bot.db.leader import leadership_for
from bot.factories import (
    build_graph,
    build_policy,
    build_poll_pool,
    build_scheduler,
    build_slack_client,
    build_store,
    build_tokens,
)
from bot.graph.conflicts import BatchConflicts
from bot.graph.directory import PERMISSION, UserDirectory
from bot.httpserver import WSGIServer
from bot.ops.metrics import Metrics
from bot.ops.startup import older_database_note, shown_url, slack_identity
from bot.reminder_store import ReminderStore
from bot.slack.http_entry import guarded
from bot.slack.socket_mode import prompt_refresh
from bot.store import RunState, utcnow
from bot.workflow.access import Checkpoint
from bot.workflow.ackfirst import AckFirst
from bot.workflow.approvals import Approvals
from bot.workflow.changes import ChangeDesk
from bot.workflow.flow import MigrationFlow
from bot.workflow.home import REFRESH_SECONDS, Home
from bot.workflow.poller import SWEEP_JOB_ID, Poller
from bot.workflow.reminders import SWEEP_SECONDS, Reminders
from bot.workflow.removals import Removals
from bot.workflow.reports import Reports
from bot.workflow.reschedule import Reschedules
from bot.workflow.users import UsersView
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
DELIVERY_MEMORY = timedelta(days=1)  # Slack re-delivers within minutes; older delivery keys are pruned
SHUTDOWN_GRACE_SECONDS = 7.0  # SIGTERM: work already running may finish this long (the process exits within 10 s)


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
        self.draining = threading.Event()  # SIGTERM: /readyz 503, no new work, leadership released
        self.leader = leadership_for(self.store.engine, on_elected=self._on_elected)
        self.tokens = tokens if tokens is not None else build_tokens(settings)
        # GraphClient gets the wrapped source: credential failures alert OPS_CHANNEL once per episode
        self.health = CredentialHealth(
            self.tokens, slack=self.slack, store=self.store, channel=settings.ops_channel, clock=clock
        )
        self.graph = build_graph(settings, self.health, observe=self.metrics.graph_request)
        self.directory = UserDirectory(self.graph, permission=PERMISSION[settings.graph_auth_mode])
        self.ack_first = AckFirst()  # work after an ack waits (briefly) while Slack requests are answered
        self.workers = Workers(WORKER_THREADS, "work", yield_to=self.ack_first)
        self.prompt = Workers(PROMPT_THREADS, "prompt", yield_to=self.ack_first)
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
            is_leader=self._leads,
        )
        self.flow = MigrationFlow(
            graph=self.graph,
            slack=self.slack,
            store=self.store,
            policy=self.policy,
            work=self.workers,
            tracker=self.tracker,
            clock=clock,
            conflicts=BatchConflicts(self.graph),
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
        self.changes = ChangeStore(self.store)
        self.checkpoint = Checkpoint(
            policy=self.policy,
            store=self.store,
            changes=self.changes,
            slack=self.slack,
            team_id=self.team_id,
            enterprise_id=self.enterprise_id,
        )
        self.users_view = UsersView(graph=self.graph, slack=self.slack, work=self.workers, clock=clock)
        self.desk = ChangeDesk(
            slack=self.slack,
            store=self.store,
            changes=self.changes,
            policy=self.policy,
            ttl=timedelta(hours=settings.approval_ttl_hours),
            clock=clock,
        )
        self.removals = Removals(
            graph=self.graph,
            slack=self.slack,
            policy=self.policy,
            desk=self.desk,
            work=self.workers,
            clock=clock,
            conflicts=self.flow.conflicts,
        )
        self.reschedules = Reschedules(
            graph=self.graph, slack=self.slack, policy=self.policy, desk=self.desk, work=self.workers, clock=clock
        )
        self.home = Home(
            store=self.store, graph=self.graph, slack=self.slack, recheck=self.checkpoint.recheck, clock=clock
        )
        self.reminders = Reminders(
            store=self.store, reminders=ReminderStore(self.store), graph=self.graph, slack=self.slack, clock=clock
        )
        self.app = ObservedApp(
            on_ack=self.metrics.ack,
            answering=self.ack_first.answering,
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
            users_view=self.users_view,
            removals=self.removals,
            desk=self.desk,
            reschedules=self.reschedules,
            dashboard=self.home,
        )

    # Lifecycle
    def start(self) -> None:
        """Start background work. Every replica serves Slack and records what Graph accepted while the database
        refused the write; only the leader (:mod:`bot.db.leader`) sweeps the running runs, expires approval and
        change requests, settles unclear actions, posts reminders, refreshes App Home tabs and keeps the credential
        alive. With one process on SQLite that is always this one, and runs interrupted at a restart are settled
        at once."""
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
        if not self.store.shared:  # with replicas, a STARTING run may be another replica's live call: wait the grace
            started = self.flow.clock()
            self.workers.submit(self.flow.reconcile_interrupted, started_before=started)
        for job_id, job, seconds in (
            ("reconcile-starting", self._reconcile_unsettled, APPROVAL_SWEEP_SECONDS),
            ("expire-approvals", self.approvals.expire_overdue, APPROVAL_SWEEP_SECONDS),
            ("expire-changes", self.desk.expire_overdue, APPROVAL_SWEEP_SECONDS),
            ("reminders", self.reminders.sweep, SWEEP_SECONDS),
            ("app-home", self.home.refresh, REFRESH_SECONDS),
            ("prune-deliveries", self._prune_deliveries, 3600),
        ):
            self.scheduler.add_job(
                self._leader_only,
                "interval",
                args=(job,),
                seconds=seconds,
                id=job_id,
                replace_existing=True,
                coalesce=True,
                max_instances=1,
            )
        # Every replica: what Graph accepted while the database refused the write is kept in this process's memory.
        self.scheduler.add_job(
            self.flow.settle_unrecorded,
            "interval",
            seconds=min(SETTLE_SECONDS, self.settings.poll_interval_seconds),
            id="settle-unrecorded",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )
        self.health.schedule(self.scheduler, only_if=self._leads)  # daily silent refresh of the credential
        self.metrics.watch_leader(self._leads)
        self.leader.start()

    def _leads(self) -> bool:
        return self.leader.is_leader and not self.draining.is_set()

    def _leader_only(self, job: Callable[[], Any]) -> None:
        if self._leads():
            contextvars.copy_context().run(job)  # ids a job binds for its log lines stay with that job

    def _on_elected(self) -> None:
        """This replica became the leader: sweep now rather than one interval later (a takeover resumes at once)."""
        if not self.store.shared:
            return
        for job_id in (SWEEP_JOB_ID, "reconcile-starting"):
            job = self.scheduler.get_job(job_id)
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def _reconcile_unsettled(self) -> None:
        """Runs whose Graph action had an unclear outcome: settle them once no live call can still be running."""
        self.flow.reconcile_interrupted(started_before=self.flow.clock() - STARTING_GRACE)

    def _prune_deliveries(self) -> None:
        self.store.prune_deliveries(utcnow() - DELIVERY_MEMORY)

    def begin_shutdown(self) -> None:
        """SIGTERM, first step (at once): not ready any more, no new Slack work, leadership released."""
        self.draining.set()
        self.leader.release()
        self.tracker.shutdown(wait=False)
        log.info("shutting down: not ready, leadership released, taking no new work")

    def drain(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> bool:
        """SIGTERM, second step: let started work finish within ``grace``, drop queued work whose Slack trigger has
        expired. True when nothing was left running."""
        deadline = time.monotonic() + grace
        prompt_done = self.prompt.drain(grace)
        return self.workers.drain(max(0.0, deadline - time.monotonic())) and prompt_done

    def close(self) -> None:
        """Stop polling and background work (the poller stops the scheduler and its pool), then close the Graph
        and credential HTTP clients."""
        graceful = not self.draining.is_set()  # after SIGTERM's drain nothing more is waited for here
        self.draining.set()
        self.leader.release()
        self.tracker.shutdown(wait=graceful)
        self.prompt.shutdown(wait=False)
        self.workers.shutdown(wait=False)
        self.graph.close()
        close_credential = getattr(self.tokens, "close", None)
        if callable(close_credential):
            close_credential()

    # HTTP mode
    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``/readyz``: ready unless shutting down or the database takes no write (a full disk, a lock held, a
        server down); says the credential's state (``no_admin``: nobody signed in) and whether this replica leads."""
        problem = self.store.healthy()
        report = {
            "ready": problem is None and not self.draining.is_set(),
            "draining": self.draining.is_set(),
            "database": problem or "ok",
            "credential": self.health.state(),
            "role": "leader" if self._leads() else "follower",
        }
        return bool(report["ready"]), report

    def _health(self, environ: dict, start_response: Callable) -> list[bytes] | None:
        """``GET /healthz`` (liveness: the process answers) and ``GET /readyz`` (readiness); None for other paths."""
        path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            return None
        if path == "/healthz":
            return _json(start_response, "200 OK", {"ok": True, "team_id": self.team_id})
        if path == "/readyz":
            ready, report = self.readiness()
            return _json(start_response, "200 OK" if ready else "503 Service Unavailable", report)
        return None

    def wsgi_app(self) -> Callable[[dict, Callable], Iterable[bytes]]:
        """``POST /slack/events`` (size and signature checked before Bolt parses, :mod:`bot.slack.http_entry`;
        503 while shutting down) and the operations paths (:meth:`operations_app`)."""
        secret = self.settings.slack_signing_secret
        slack_handler = guarded(
            SlackRequestHandler(self.app, path="/slack/events"), secret.get_secret_value() if secret else None
        )
        operations = self.operations_app()

        def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != "/slack/events":
                return operations(environ, start_response)
            if self.draining.is_set():  # Slack retries elsewhere (X-Slack-Retry-Num); the balancer sends it on
                return _json(start_response, "503 Service Unavailable", {"ok": False, "error": "shutting_down"})
            return slack_handler(environ, start_response)

        return application

    def operations_app(self) -> Callable[[dict, Callable], Iterable[bytes]]:
        """``GET /healthz`` (liveness), ``GET /readyz`` (readiness) and ``GET /metrics`` (Prometheus text); 404 for
        anything else."""

        def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
            path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
            if method in ("GET", "HEAD") and path == "/metrics":
                body, kind = self.metrics.render()
                start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
                return [b"" if method == "HEAD" else body]
            found = self._health(environ, start_response)
            return found if found is not None else _json(start_response, "404 Not Found", {"ok": False})

        return application

    def operations_server(self, host: str, port: int) -> WSGIServer:
        """``/healthz``, ``/readyz`` and ``/metrics`` on a port of their own (``METRICS_PORT`` or
        ``run --health-port``; Socket Mode has no other HTTP port)."""
        return WSGIServer(self.operations_app(), host, port, threads=2)

    def http_server(self, host: str, port: int) -> WSGIServer:
        return WSGIServer(self.wsgi_app(), host, port, threads=HTTP_THREADS)

    # Socket Mode
    def socket_mode_handler(self) -> Any:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        assert self.settings.slack_app_token is not None
        handler = SocketModeHandler(self.app, self.settings.slack_app_token.get_secret_value())
        prompt_refresh(handler.client)  # a refresh must not delay envelopes past the 3 s ack window
        return handler


def _json(start_response: Callable, status: str, payload: dict[str, Any]) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
