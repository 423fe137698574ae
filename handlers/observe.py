"""A Bolt middleware: each Slack request's time to ack per listener, and its Slack user and job id bound to the
log lines of the work it starts (see :mod:`bot.ops.logs`; the worker pools carry the binding over)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from bot.ops.logs import log_context

GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def listener_of(body: dict) -> str:
    """A low-cardinality name for what the request asks: the command, view callback_id or action_id."""
    if body.get("command"):
        return str(body["command"])
    kind = str(body.get("type") or "unknown")
    if kind in ("view_submission", "view_closed"):
        return f"{kind}:{(body.get('view') or {}).get('callback_id') or 'unknown'}"
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return f"action:{actions[0].get('action_id') or 'unknown'}"
    if kind == "event_callback":
        return f"event:{(body.get('event') or {}).get('type') or 'unknown'}"
    return kind


def _user(body: dict) -> str | None:
    user = body.get("user_id") or body.get("user")
    return (user.get("id") if isinstance(user, dict) else user) or None


def _job_id(body: dict) -> str | None:
    view = body.get("view") or {}
    actions = body.get("actions") or [{}]
    for text in (body.get("text"), actions[0].get("value"), view.get("private_metadata")):
        match = GUID_RE.search(text) if isinstance(text, str) else None
        if match:
            return match.group(0).lower()
    return None


def observe_acks(on_ack: Callable[[str, float], None]) -> Callable[..., Any]:
    """The middleware for ``app.use``: ``on_ack(listener, seconds)`` once the listener (and its ack) returned."""

    def middleware(body: dict, next: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            with log_context(slack_user=_user(body), job_id=_job_id(body)):
                return next()
        finally:
            on_ack(listener_of(body), time.perf_counter() - started)

    return middleware
