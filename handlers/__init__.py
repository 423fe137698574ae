"""Slack listeners: parse, ack, hand over to the workflow in ``bot/``."""

from __future__ import annotations

from slack_bolt import App

from bot.approvals import Approvals
from bot.health import Whoami
from bot.policy import Policy
from bot.reports import Reports
from bot.workers import Workers
from bot.workflow import MigrationFlow
from handlers import actions, commands, views


def register(app: App, *, flow: MigrationFlow, approvals: Approvals, policy: Policy, workers: Workers,
             reports: Reports, whoami: Whoami) -> None:
    """Register every listener on ``app``."""
    commands.register(app, flow=flow, policy=policy, reports=reports, whoami=whoami, workers=workers)
    views.register(app, flow=flow, approvals=approvals, workers=workers)
    actions.register(app, flow=flow, approvals=approvals, workers=workers)
