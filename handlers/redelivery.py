"""Re-deliveries change nothing: a Slack request is taken once across all replicas, checked by the database.

Slack sends the same request again when its answer was late or lost: over HTTP with ``X-Slack-Retry-Num`` (to
whichever replica the load balancer picks), in Socket Mode as the same envelope on another connection. Each
request's own id (``trigger_id`` of a slash command or click, ``event_id`` of an event) is inserted into
``slack_deliveries`` before any listener runs; the primary key lets exactly one insert win, and a request whose
key is already there is acked and dropped. Modal submissions are left to the views, which make each modal
single-use by its view id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_bolt import App, BoltResponse
from sqlalchemy.exc import SQLAlchemyError

from bot.store import Store

log = logging.getLogger(__name__)


def delivery_key(body: dict) -> str | None:
    """The id that is the same on every delivery of one Slack request, None when there is none to check."""
    kind = body.get("type")
    if kind in ("view_submission", "view_closed"):
        return None
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    if kind == "block_actions" and body.get("trigger_id"):
        action_ts = next((action.get("action_ts") for action in body.get("actions") or []), "")
        return f"action:{body['trigger_id']}:{action_ts}"
    if kind == "event_callback" and body.get("event_id"):
        return f"event:{body['event_id']}"
    return None


def register(app: App, *, store: Store) -> None:
    """Add the once-only check in front of every listener."""

    @app.middleware
    def once(body: dict, next: Callable[[], None]) -> BoltResponse | None:
        key = delivery_key(body)
        if key is None:
            next()
            return None
        try:
            first = store.first_delivery(key)
        except SQLAlchemyError as error:  # the database can't tell: handle it (the claims downstream still hold)
            log.warning("could not record Slack delivery %s (%s): handling it", key, type(error).__name__)
            first = True
        if first:
            next()
            return None
        log.info("Slack re-delivered %s: already taken, ignored", key)
        return BoltResponse(status=200, body="")  # the answer Slack missed: acknowledged, nothing done again
