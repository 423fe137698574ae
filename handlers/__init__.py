"""Slack listeners: parse, ack, hand over to the workflow in ``bot/``.

Bolt runs them with ``process_before_response``: the HTTP answer leaves when the listener returns, so a
listener only parses, acks and submits. Work that must use a fresh ``trigger_id`` (``views.open``) goes to the
``prompt`` pool, which never waits behind Graph; everything else goes to ``workers``.
"""

from __future__ import annotations

from slack_bolt import App

from bot.workflow.approvals import Approvals
from bot.workflow.flow import MigrationFlow
from bot.workflow.policy import Policy
from bot.workflow.reports import Reports
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers
from handlers import actions, commands, views


def register(
    app: App,
    *,
    flow: MigrationFlow,
    approvals: Approvals,
    policy: Policy,
    workers: Workers,
    prompt: Workers,
    reports: Reports,
    whoami: Whoami,
) -> None:
    """Register every listener on ``app``."""
    commands.register(app, flow=flow, policy=policy, reports=reports, whoami=whoami, workers=workers, prompt=prompt)
    views.register(app, flow=flow, approvals=approvals, workers=workers)
    actions.register(app, flow=flow, approvals=approvals, workers=workers, prompt=prompt)
