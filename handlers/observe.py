"""The Bolt app, observed: each Slack request's time to ack per listener, and its Slack user and job id bound to
the log lines of the work it starts (see :mod:`bot.ops.logs`; the worker pools carry the binding over)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse

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


class ObservedApp(App):
    """A Bolt ``App`` whose every request is timed to its ack (listeners ack before they return:
    ``process_before_response``), runs with its Slack user and job id bound for the log lines, and is marked as
    being answered (``answering``) in both transports, HTTP and Socket Mode.

    A Bolt middleware can't do this: its ``next()`` only lets the chain go on, the listener runs after it returned.
    """

    def __init__(
        self,
        *args: Any,
        on_ack: Callable[[str, float], None] | None = None,
        answering: Callable[[], AbstractContextManager[Any]] = nullcontext,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._on_ack = on_ack
        self._answering = answering  # marks the request in flight (bot.workflow.ackfirst: work waits for acks)

    def dispatch(self, req: BoltRequest) -> BoltResponse:
        started = time.perf_counter()
        body = req.body if isinstance(req.body, dict) else {}
        status = None
        try:
            with self._answering(), log_context(slack_user=_user(body), job_id=_job_id(body)):
                response = super().dispatch(req)
                status = response.status
                return response
        finally:
            if self._on_ack is not None:
                # an unsigned request names no listener: its made-up names must not become series
                listener = "unverified" if status == 401 else listener_of(body)
                self._on_ack(listener, time.perf_counter() - started)
