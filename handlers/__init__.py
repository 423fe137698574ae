"""Slack listeners: parse, ack, hand over to the workflow in ``bot/`` through the authorization checkpoint.

Bolt runs them with ``process_before_response``: the HTTP answer leaves when the listener returns, so a
listener only parses, acks and submits. Work that must use a fresh ``trigger_id`` (``views.open``) goes to the
``prompt`` pool, which never waits behind Graph; everything else goes to ``workers``. Every submitted piece of
work first passes :meth:`bot.workflow.access.Checkpoint.guard`. A payload without the ids a listener needs is
answered 400 (:func:`on_error`).
"""

from __future__ import annotations

import logging

from slack_bolt import App, BoltResponse

from bot.workflow.access import Checkpoint
from bot.workflow.approvals import Approvals
from bot.workflow.changes import ChangeDesk
from bot.workflow.flow import MigrationFlow
from bot.workflow.home import Home
from bot.workflow.removals import Removals
from bot.workflow.reports import Reports
from bot.workflow.reschedule import Reschedules
from bot.workflow.users import UsersView
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers
from handlers import actions, commands, home, users, views
from handlers.payloads import MalformedPayload

log = logging.getLogger(__name__)


def on_error(error: Exception) -> BoltResponse | None:
    """A malformed payload is the sender's fault (400, no traceback); anything else stays a logged 500."""
    if isinstance(error, MalformedPayload):
        log.info("malformed Slack payload: %s", error)
        return BoltResponse(status=400, body=f"malformed payload: {error}")
    log.error("listener failed", exc_info=error)
    return None


def register(
    app: App,
    *,
    flow: MigrationFlow,
    approvals: Approvals,
    checkpoint: Checkpoint,
    workers: Workers,
    prompt: Workers,
    reports: Reports,
    whoami: Whoami,
    users_view: UsersView,
    removals: Removals,
    desk: ChangeDesk,
    reschedules: Reschedules,
    dashboard: Home,
) -> None:
    """Register every listener on ``app``."""
    app.error(on_error)
    home.register(app, home=dashboard, checkpoint=checkpoint, workers=workers)
    more = users.routes(users=users_view, removals=removals, reschedules=reschedules, prompt=prompt)
    users.register(
        app,
        users=users_view,
        removals=removals,
        reschedules=reschedules,
        desk=desk,
        checkpoint=checkpoint,
        workers=workers,
        prompt=prompt,
    )
    commands.register(
        app,
        flow=flow,
        checkpoint=checkpoint,
        reports=reports,
        whoami=whoami,
        workers=workers,
        prompt=prompt,
        more_routes=more,
    )
    views.register(app, approvals=approvals, checkpoint=checkpoint, workers=workers)
    actions.register(app, flow=flow, approvals=approvals, checkpoint=checkpoint, workers=workers, prompt=prompt)
