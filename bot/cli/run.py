"""``migrate-bot run``: serve Slack (Socket Mode or HTTP) until SIGTERM; with no credentials at all, the demo."""

from __future__ import annotations

import gc
import logging
import signal
import threading
from typing import Any

from bot.app import MigrateBot
from bot.config import Settings
from bot.errors import ConfigError
from bot.ops.startup import connect_socket_mode
from bot.rehearsal.demo import demo_command

log = logging.getLogger("bot.app")


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
    bot = MigrateBot(settings)
    bot.start()
    metrics = None
    if settings.metrics_port is not None:
        metrics = bot.metrics_server(args.host, settings.metrics_port).start()
        log.info("metrics on %s/metrics (health: /healthz)", metrics.url)
    gc.freeze()  # what start-up built lives for the process: keep it out of every later full collection
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.http:
            server = bot.http_server(args.host, args.port).start()
            log.info("serving Slack on %s/slack/events (health: /healthz)", server.url)
            _wait(stop)
            server.stop()
        else:
            handler = bot.socket_mode_handler()
            connect_socket_mode(handler, settings.slack_api_url)
            log.info("connected to Slack in Socket Mode")
            _wait(stop)
            handler.close()
    finally:
        if metrics is not None:
            metrics.stop()
        bot.close()
    return 0


def _wait(stop: threading.Event) -> None:
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
