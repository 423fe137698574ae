"""Reading the ids a listener needs out of a verified Slack payload; a payload without them is malformed (HTTP 400,
see :func:`handlers.on_error`), never a 500."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar, get_type_hints

from bot.errors import InvalidJobId
from bot.graph.models import parse_job_id
from bot.ui.modal import ModalContext
from bot.workflow.access import Act, Ask

JOB_ACTIONS = ("migrate", "validate", "cancel")
_NUMBER = re.compile(r"[0-9]{1,18}")  # ASCII digits only: str.isdigit accepts "²", which int() refuses
#: A page of the users modal (a batch has at most a few thousand users, ten a page).
_PAGE = re.compile(r"[0-9]{1,6}")
Form = TypeVar("Form")


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


def _number(raw: Any, pattern: re.Pattern[str], what: str) -> int:
    value = str(raw if raw is not None else "")
    if not pattern.fullmatch(value):
        raise MalformedPayload(f"payload names no {what}")
    return int(value)


def run_id(raw: Any) -> int:
    """A run id as the bot wrote it into a button value or modal metadata."""
    return _number(raw, _NUMBER, "run")


def change_id(raw: Any) -> int:
    """A change request's id as the bot wrote it into an Approve / Reject button's value."""
    return _number(raw, _NUMBER, "change request")


def page(raw: Any) -> int:
    """A page number of the users modal (the Previous / Next button's value)."""
    return _number(raw, _PAGE, "page")


def job_id(raw: Any) -> str:
    """A job id as the bot wrote it into a button value or form metadata (canonical lower case)."""
    try:
        return parse_job_id(str(raw if raw is not None else ""))
    except InvalidJobId:
        raise MalformedPayload("payload names no job") from None


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


def form(view: Any, decode: Callable[[str], Form]) -> Form:
    """A form's ``private_metadata`` read back by ``decode`` (the form dataclass's own ``decode``): every field of
    the type it declares, a channel and an owner, and a job id the bot could have written."""
    if not isinstance(view, dict):
        raise MalformedPayload("payload has no view")
    try:
        meta = decode(text(view, "private_metadata") or "")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise MalformedPayload("view metadata is not this form's") from None
    types = get_type_hints(type(meta))
    if any(not isinstance(getattr(meta, field.name), types[field.name]) for field in dataclasses.fields(meta)):
        raise MalformedPayload("view metadata is not this form's")
    if not (meta.channel_id and meta.user_id) or job_id(meta.job_id) != meta.job_id:
        raise MalformedPayload("view metadata is not this form's")
    return meta


def interaction_ask(body: dict, what: Act, **fields: Any) -> Ask:
    """An :class:`Ask` for a button click or a view submission: the person, their workspace and organisation."""
    enterprise = body.get("enterprise")
    return Ask(
        who=text(body, "user", "id") or "",
        what=what,
        team_id=text(body, "team", "id", required=False),
        user_team_id=text(body, "user", "team_id", required=False),
        enterprise_id=text(enterprise, "id", required=False) if isinstance(enterprise, dict) else None,
        delivery=delivery_key(body),
        **fields,
    )


def event_ask(body: dict, what: Act) -> Ask:
    """An :class:`Ask` for an Events API event (``app_home_opened``): the person, the workspace and organisation
    of the envelope."""
    return Ask(
        who=text(body, "event", "user") or "",
        what=what,
        team_id=text(body, "team_id", required=False),
        enterprise_id=text(body, "enterprise_id", required=False),
        channel_id=text(body, "event", "channel", required=False),
        delivery=delivery_key(body),
    )


def command_ask(command: dict, what: Act, **fields: Any) -> Ask:
    """An :class:`Ask` for a slash command."""
    return Ask(
        who=text(command, "user_id") or "",
        what=what,
        team_id=text(command, "team_id", required=False),
        enterprise_id=text(command, "enterprise_id", required=False),
        channel_id=text(command, "channel_id"),
        delivery=delivery_key(command),
        **fields,
    )


def delivery_key(body: dict) -> str | None:
    """The id that is the same on every delivery of one Slack request (an HTTP retry with ``X-Slack-Retry-Num``, a
    Socket Mode envelope sent again, to this replica or another), None when there is none to check: modal
    submissions are single-use by their view id instead."""
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
