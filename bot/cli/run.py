"""``migrate-bot run``: serve Slack (Socket Mode or HTTP) until SIGTERM; with no credentials at all, the demo."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from typing import Any

from bot.app import MigrateBot
from bot.config import Settings
from bot.rehearsal.demo import demo_command

log = logging.getLogger("bot.app")
#: Seconds a thread may hold the GIL while another waits (CPython's default is 5 ms): an ack waiting behind
#: a busy poll or worker thread gets it back sooner (bench/README.md, scenario 4).
ACK_SWITCH_INTERVAL = 0.00025
#: CPython's (700, 10, 10) with full collections ten times rarer: after ``gc.freeze()`` nearly every tenth young
#: collection became a full one, a 3-7 ms stop of every thread that landed in bursts of acks.
GC_THRESHOLDS = (700, 10, 100)


def run_command(args: Any, settings: Settings) -> int:
    """``migrate-bot run``: Socket Mode by default, ``--http`` for HTTP; no credentials at all: the demo."""
    if not settings.has_any_credentials:
        print(
            "No Slack or Azure credentials are configured: running the built-in demo instead.\n"
            "See README.md to connect a Slack workspace and a tenant.\n"
        )
        args.outcome = getattr(args, "outcome", "completed")
        return demo_command(args, settings)
    settings.require_slack(http=args.http)
    settings.require_graph_credential()
    bot = MigrateBot(settings)
    bot.start()
    gc.freeze()  # what start-up built lives for the process: keep it out of every later full collection
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(ACK_SWITCH_INTERVAL)
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
            handler.connect()
            log.info("connected to Slack in Socket Mode")
            _wait(stop)
            handler.close()
    finally:
        bot.close()
    return 0


def _wait(stop: threading.Event) -> None:
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
