"""``migrate-bot run``: serve Slack (Socket Mode or HTTP) until SIGTERM; with no credentials at all, the demo."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from bot.app import SHUTDOWN_GRACE_SECONDS, MigrateBot
from bot.config import Settings
from bot.db.sqlite_lock import lock_sqlite
from bot.errors import ConfigError
from bot.ops.startup import connect_socket_mode, database_url_problem
from bot.rehearsal.demo import demo_command

log = logging.getLogger("bot.app")
#: Seconds a thread may hold the GIL while another waits (CPython's default is 5 ms): an ack waiting behind
#: a busy poll or worker thread gets it back sooner (bench/README.md, scenario 4).
ACK_SWITCH_INTERVAL = 0.00025
#: CPython's (700, 10, 10) with full collections ten times rarer: after ``gc.freeze()`` nearly every tenth young
#: collection became a full one, a 3-7 ms stop of every thread that landed in bursts of acks.
GC_THRESHOLDS = (700, 10, 100)

EXIT_WITHIN_SECONDS = 10.0  # after SIGTERM (a Kubernetes pod's default grace is 30 s; ours must fit in 10)


def run_command(args: Any, settings: Settings) -> int:
    """``migrate-bot run``: Socket Mode by default, ``--http`` for HTTP; no credentials at all: the demo."""
    if not settings.has_any_credentials:
        print(
            "No Slack or Azure credentials are configured: running the built-in demo instead.\n"
            "See README.md to connect a Slack workspace and a tenant.\n"
        )
        args.outcome = getattr(args, "outcome", "completed")
        return demo_command(args, settings)
    try:
        settings.require_slack(http=args.http)
    except ConfigError as error:
        raise ConfigError(f"slack: {error}") from None
    try:
        settings.require_graph_credential()
    except ConfigError as error:
        raise ConfigError(f"credential: {error}") from None
    problem = database_url_problem(settings.resolved_database_url)
    if problem is not None:
        raise ConfigError(f"database: {problem}")
    process_lock = lock_sqlite(settings.resolved_database_url)  # one process per SQLite file
    bot = MigrateBot(settings)
    bot.start()
    operations = None
    port = args.health_port if getattr(args, "health_port", None) is not None else settings.metrics_port
    if port is not None:  # Socket Mode's only HTTP port; in HTTP mode the same paths are on --port too
        operations = bot.operations_server(args.host, port).start()
        url = operations.url
        log.info("health on %s/healthz, readiness on %s/readyz, metrics on %s/metrics", url, url, url)
    gc.freeze()  # what start-up built lives for the process: keep it out of every later full collection
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(ACK_SWITCH_INTERVAL)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    clean = True
    stopped_at = time.monotonic()  # set again when SIGTERM arrives
    try:
        if args.http:
            server = bot.http_server(args.host, args.port).start()
            log.info("serving Slack on %s/slack/events (health: /healthz, readiness: /readyz)", server.url)
            _wait(stop)
            stopped_at = time.monotonic()
            bot.begin_shutdown()  # /readyz 503 and Slack requests 503 from here on; leadership released
            clean = bot.drain(max(0.0, stopped_at + SHUTDOWN_GRACE_SECONDS - time.monotonic()))  # from SIGTERM on
            server.stop()
        else:
            handler = bot.socket_mode_handler()
            connect_socket_mode(handler, settings.slack_api_url)
            log.info("connected to Slack in Socket Mode")
            _wait(stop)
            stopped_at = time.monotonic()
            bot.begin_shutdown()
            handler.close()  # unacknowledged envelopes go to the other replicas' connections
            clean = bot.drain(max(0.0, stopped_at + SHUTDOWN_GRACE_SECONDS - time.monotonic()))  # from SIGTERM on
    finally:
        if stop.is_set():  # work already running may use the last seconds before its clients are closed
            clean = _threads_end_by(stopped_at + EXIT_WITHIN_SECONDS - 1.0) and clean
        bot.close()
        if operations is not None:  # /readyz said 503 until here
            operations.stop()
        if process_lock is not None:
            process_lock.release()
    if stop.is_set():
        log.info("stopped %.1f s after SIGTERM", time.monotonic() - stopped_at)
    if not clean:  # a call outlived the grace: end now; the leader settles its run from the database
        logging.shutdown()
        os._exit(0)
    return 0


def _threads_end_by(deadline: float) -> bool:
    """Wait until ``deadline`` (monotonic) for the other non-daemon threads (polls, pool workers) to end."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return not any(
        thread.is_alive() and not thread.daemon and thread is not threading.current_thread()
        for thread in threading.enumerate()
    )


def _wait(stop: threading.Event) -> None:
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
