"""Reading the ids a listener needs out of a verified Slack payload; a payload without them is malformed (HTTP 400,
see :func:`handlers.on_error`), never a 500."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.ui.modal import ModalContext
from bot.workflow.access import Act, Ask

JOB_ACTIONS = ("migrate", "validate", "cancel")
_RUN_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit accepts "²", which int() refuses


class MalformedPayload(ValueError):
    """A signed payload without the fields Slack always sends for it."""


def text(node: Any, *path: str, required: bool = True) -> str | None:
    """The string at ``path`` in nested dicts; missing or not a string raises (``required``) or gives None."""
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, str) and node:
        return node
    if required:
        raise MalformedPayload(f"payload has no {'.'.join(path)}")
    return None


def run_id(raw: Any) -> int:
    """A run id as the bot wrote it into a button value or modal metadata."""
    value = str(raw if raw is not None else "")
    if not _RUN_ID.fullmatch(value):
        raise MalformedPayload("payload names no run")
    return int(value)


def metadata(view: dict) -> dict:
    """A view's ``private_metadata`` as the bot wrote it (a JSON object)."""
    try:
        data = json.loads(text(view, "private_metadata") or "")
    except ValueError:
        raise MalformedPayload("view metadata is not JSON") from None
    if not isinstance(data, dict):
        raise MalformedPayload("view metadata is not an object")
    return data


def modal_context(view: dict) -> ModalContext:
    """The confirmation modal's :class:`ModalContext`."""
    try:
        ctx = ModalContext.decode(text(view, "private_metadata") or "")
    except (ValueError, KeyError, TypeError):
        raise MalformedPayload("view metadata is not a confirmation context") from None
    if ctx.action not in JOB_ACTIONS or not all(isinstance(v, str) for v in (ctx.channel_id, ctx.job_id, ctx.user_id)):
        raise MalformedPayload("view metadata is not a confirmation context")
    return ctx


def interaction_ask(body: dict, what: Act, **fields: Any) -> Ask:
    """An :class:`Ask` for a button click or a view submission: the person, their workspace and organisation."""
    enterprise = body.get("enterprise")
    return Ask(
        who=text(body, "user", "id") or "",
        what=what,
        team_id=text(body, "team", "id", required=False),
        user_team_id=text(body, "user", "team_id", required=False),
        enterprise_id=text(enterprise, "id", required=False) if isinstance(enterprise, dict) else None,
        **fields,
    )


def command_ask(command: dict, what: Act, **fields: Any) -> Ask:
    """An :class:`Ask` for a slash command."""
    return Ask(
        who=text(command, "user_id") or "",
        what=what,
        team_id=text(command, "team_id", required=False),
        enterprise_id=text(command, "enterprise_id", required=False),
        channel_id=text(command, "channel_id"),
        **fields,
    )
