"""App Home listener: ``app_home_opened`` publishes the person's dashboard (on the worker pool)."""

from __future__ import annotations

from slack_bolt import App

from bot.workflow.home import Home
from bot.workflow.workers import Workers


def register(app: App, *, home: Home, workers: Workers) -> None:
    def home_opened(event: dict) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            workers.submit(home.opened, event["user"])

    app.event("app_home_opened")(home_opened)
