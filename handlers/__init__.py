"""Slack listeners: parse, ack, hand over to the workflow in ``bot/``."""

from __future__ import annotations

from slack_bolt import App

from bot.policy import Policy
from bot.workflow import MigrationFlow
from bot.workers import Workers
from handlers import actions, commands, views


def register(app: App, *, flow: MigrationFlow, policy: Policy, workers: Workers) -> None:
    """Register every listener on ``app``."""
    commands.register(app, flow=flow, policy=policy)
    views.register(app, flow=flow, workers=workers)
    actions.register(app, flow=flow, workers=workers)
