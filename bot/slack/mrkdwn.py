"""Escaping and trimming of text that goes into Slack mrkdwn and Block Kit fields."""

from __future__ import annotations

from datetime import datetime

ELLIPSIS = "…"


def escape(text: object) -> str:
    """Escape the three mrkdwn control characters so user or Graph text cannot mention or link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis.

    Never ends inside an escape entity such as ``&amp;``.
    """
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def safe(text: object, limit: int) -> str:
    """Escape, then truncate to a Block Kit limit."""
    return truncate(escape(text), limit)


def date(moment: datetime | None, fmt: str = "{date_short_pretty} {time}") -> str:
    """A Slack date token: every reader sees ``moment`` in their own time zone."""
    if moment is None:
        return "—"
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{fmt}|{fallback}>"


def user(user_id: str) -> str:
    """A mention of a Slack user id (ids are checked by the caller's source: Slack payloads)."""
    return f"<@{escape(user_id)}>"


def plain(text: object, limit: int) -> dict:
    """A plain_text object cut to ``limit`` (plain_text is never parsed for mentions)."""
    value = str(text) if str(text) else " "
    return {"type": "plain_text", "text": truncate(value, limit), "emoji": True}
