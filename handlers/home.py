"""App Home listener: ``app_home_opened`` passes the checkpoint (:class:`bot.workflow.access.Checkpoint`) on the
worker pool, which publishes the person's dashboard, or the refusal in its place."""

from __future__ import annotations

from slack_bolt import App

from bot.workflow.access import Act, Checkpoint
from bot.workflow.home import Home
from bot.workflow.workers import Workers
from handlers.payloads import event_ask


def register(app: App, *, home: Home, checkpoint: Checkpoint, workers: Workers) -> None:
    def home_opened(body: dict, event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        ask = event_ask(body, Act.HOME)
        workers.submit(
            checkpoint.guard,
            ask,
            lambda: home.opened(ask.who),
            otherwise=lambda decision: home.refused(ask.who, decision.reason),
        )

    app.event("app_home_opened")(home_opened)
