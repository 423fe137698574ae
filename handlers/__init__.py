"""Slack listeners: parse, ack, hand over to the workflow in ``bot/``.

Bolt runs them with ``process_before_response``: the HTTP answer leaves when the listener returns, so a
listener only parses, acks and submits. Work that must use a fresh ``trigger_id`` (``views.open``) goes to the
``prompt`` pool, which never waits behind Graph; everything else goes to ``workers``.
"""

from __future__ import annotations

from slack_bolt import App

from bot.workflow.approvals import Approvals
from bot.workflow.changes import ChangeDesk
from bot.workflow.flow import MigrationFlow
from bot.workflow.home import Home
from bot.workflow.policy import Policy
from bot.workflow.removals import Removals
from bot.workflow.reports import Reports
from bot.workflow.reschedule import Reschedules
from bot.workflow.users import UsersView
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers
from handlers import actions, commands, home, users, views


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
    users_view: UsersView | None = None,
    removals: Removals | None = None,
    desk: ChangeDesk | None = None,
    reschedules: Reschedules | None = None,
    dashboard: Home | None = None,
) -> None:
    """Register every listener on ``app``."""
    if dashboard is not None:
        home.register(app, home=dashboard, workers=workers)
    more = {}
    if users_view is not None and removals is not None and desk is not None and reschedules is not None:
        more = users.routes(users=users_view, removals=removals, reschedules=reschedules, prompt=prompt)
        users.register(
            app,
            users=users_view,
            removals=removals,
            reschedules=reschedules,
            desk=desk,
            workers=workers,
            prompt=prompt,
        )
    commands.register(
        app, flow=flow, policy=policy, reports=reports, whoami=whoami, workers=workers, prompt=prompt, more_routes=more
    )
    views.register(app, flow=flow, approvals=approvals, workers=workers)
    actions.register(app, flow=flow, approvals=approvals, workers=workers, prompt=prompt)
