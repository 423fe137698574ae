"""Render what the stand-in recorded the way a person reads it in the Slack client.

Pure functions of recorded data: no network, no clock. mrkdwn references are resolved
(``<@U1>`` → ``@name``, ``<!subteam^S1>`` → ``@handle``, ``<!date^…|fallback>`` → fallback,
``<url|label>`` → label) and only then are ``&lt; &gt; &amp;`` unescaped, so escaped user text
shows as typed and can never turn into a mention or a link.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.rehearsal.slack_standin.api import SlackStandIn
    from bot.rehearsal.slack_standin.records import Message

__all__ = ["blocks_to_lines", "mrkdwn_to_text", "render_channel", "render_view"]

_REF = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def _unescape(text: str) -> str:
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


class _Names:
    def __init__(self, standin: SlackStandIn) -> None:
        self.users = {uid: u.name for uid, u in standin.users.items()}
        self.users[standin.bot_user_id] = standin.bot_name
        self.groups = {gid: g.handle for gid, g in standin.usergroups.items()}
        self.channels = {cid: c.name for cid, c in standin.channels.items()}


def mrkdwn_to_text(text: str, names: Any = None) -> str:
    """Resolve Slack references and unescape entities in one mrkdwn string."""
    users = getattr(names, "users", {}) or {}
    groups = getattr(names, "groups", {}) or {}
    channels = getattr(names, "channels", {}) or {}

    def reference(match: re.Match) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            uid = target[1:]
            return "@" + _unescape(label or users.get(uid, uid))
        if target.startswith("#"):
            cid = target[1:]
            return "#" + _unescape(label or channels.get(cid, cid))
        if target.startswith("!subteam^"):
            gid = target[len("!subteam^") :]
            if label:
                return _unescape(label if label.startswith("@") else "@" + label)
            return "@" + groups.get(gid, gid)
        if target.startswith("!date^"):
            return _unescape(label) if label else target.split("^")[1]
        if target.startswith("!"):
            keyword = target[1:]
            return _unescape(label) if label else "@" + keyword
        return _unescape(label or target)

    parts: list[str] = []
    last = 0
    for match in _REF.finditer(text):
        parts.append(_unescape(text[last : match.start()]))
        parts.append(reference(match))
        last = match.end()
    parts.append(_unescape(text[last:]))
    return "".join(parts)


def _text(obj: Any, names: Any) -> str:
    if not isinstance(obj, dict):
        return ""
    value = str(obj.get("text", ""))
    if obj.get("type") == "mrkdwn" and not obj.get("verbatim"):
        return mrkdwn_to_text(value, names)
    if obj.get("type") == "mrkdwn":
        return _unescape(value)
    return value  # plain_text is shown exactly as sent


def _element(el: Any, names: Any) -> str:
    if not isinstance(el, dict):
        return ""
    kind = el.get("type")
    if kind == "button":
        return f"[{_text(el.get('text'), names)}]"
    if kind == "image":
        return f"[image: {el.get('alt_text', '')}]"
    if kind == "overflow":
        return "[⋯]"
    if kind and ("select" in kind or kind.endswith("picker")):
        placeholder = _text(el.get("placeholder"), names) or kind
        return f"[{placeholder} ▾]"
    if kind == "plain_text_input":
        return f"[{_text(el.get('placeholder'), names) or '…'}]"
    if kind in ("checkboxes", "radio_buttons"):
        mark = "☐" if kind == "checkboxes" else "○"
        return "  ".join(f"{mark} {_text(o.get('text'), names)}" for o in el.get("options") or [])
    return f"[{kind}]"


def _rich_text(node: Any, names: Any) -> str:
    if isinstance(node, list):
        return "".join(_rich_text(n, names) for n in node)
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "user":
        uid = node.get("user_id", "")
        return "@" + getattr(names, "users", {}).get(uid, uid)
    if kind == "usergroup":
        gid = node.get("usergroup_id", "")
        return "@" + getattr(names, "groups", {}).get(gid, gid)
    if kind == "link":
        return str(node.get("text") or node.get("url", ""))
    if kind == "emoji":
        return f":{node.get('name', '')}:"
    if kind == "broadcast":
        return "@" + str(node.get("range", "here"))
    return _rich_text(node.get("elements", []), names)


def blocks_to_lines(blocks: list, names: Any = None) -> list[str]:
    """Block Kit blocks as display lines (buttons as ``[Label]``)."""
    lines: list[str] = []
    for block in blocks or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "header":
            lines.append(f"*{_text(block.get('text'), names)}*")
        elif kind == "section":
            text = _text(block.get("text"), names)
            if block.get("accessory"):
                text = f"{text}  {_element(block['accessory'], names)}".strip()
            if text:
                lines.extend(text.split("\n"))
            fields = [_text(f, names) for f in block.get("fields") or []]
            for i in range(0, len(fields), 2):
                pair = [f.replace("\n", " / ") for f in fields[i : i + 2]]
                lines.append("  |  ".join(pair))
        elif kind == "context":
            parts = [
                (_element(e, names) if isinstance(e, dict) and e.get("type") == "image" else _text(e, names))
                for e in block.get("elements") or []
            ]
            lines.append("  ".join(p for p in parts if p))
        elif kind == "actions":
            lines.append(" ".join(_element(e, names) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("─" * 24)
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "input":
            label = _text(block.get("label"), names)
            lines.append(f"{label}: {_element(block.get('element'), names)}")
        elif kind == "rich_text":
            lines.extend(_rich_text(block.get("elements", []), names).split("\n"))
        elif kind == "markdown":
            lines.extend(str(block.get("text", "")).split("\n"))
    return lines


def _message_lines(message: Message, names: _Names) -> list[str]:
    if message.deleted:
        return ["(message deleted)"]
    lines = blocks_to_lines(message.blocks, names) if message.blocks else []
    if not lines:
        lines = mrkdwn_to_text(message.text or "", names).split("\n")
    for attachment in message.attachments or []:
        if isinstance(attachment, dict):
            body = attachment.get("blocks")
            extra = (
                blocks_to_lines(body, names)
                if body
                else [mrkdwn_to_text(str(attachment.get("text") or attachment.get("fallback") or ""), names)]
            )
            lines.extend("▌ " + line for line in extra)
    return lines


def _clock(ts: str, tz: tzinfo) -> str:
    return datetime.fromtimestamp(float(ts), tz).strftime("%H:%M:%S")


def _author(message: Message, names: _Names) -> str:
    name = names.users.get(message.user, message.user)
    return f"{name} (app)" if message.bot_id else name


def render_channel(standin: SlackStandIn, channel_id: str, *, tz: tzinfo = UTC, viewer: str | None = None) -> str:
    """The channel as a person reads it: root messages (current versions) with time and author,
    thread replies indented under them (broadcast replies marked), and, when ``viewer`` is given,
    the ephemeral messages only that person saw."""
    names = _Names(standin)
    channel = names.channels.get(channel_id, channel_id)
    out = [f"#{channel}"]
    entries: list[tuple[float, list[str]]] = []
    for message in standin.messages(channel_id):
        head = f"[{_clock(message.ts, tz)}] {_author(message, names)}"
        if message.edited_at is not None and not message.deleted:
            head += "  (edited)"
        block = [head] + ["    " + line for line in _message_lines(message, names)]
        if message.replies:
            count = len(message.replies)
            block.append(f"    ↳ {count} repl{'y' if count == 1 else 'ies'}")
        for reply in message.replies:
            mark = "  (also sent to the channel)" if reply.reply_broadcast else ""
            edited = "  (edited)" if reply.edited_at is not None and not reply.deleted else ""
            block.append(f"      [{_clock(reply.ts, tz)}] {_author(reply, names)}{mark}{edited}")
            block.extend("          " + line for line in _message_lines(reply, names))
        entries.append((float(message.ts), block))
    if viewer is not None:
        for eph in standin.ephemerals:
            if eph.channel != channel_id or eph.user != viewer or eph.response_type == "in_channel":
                continue
            if eph.replace_original or eph.delete_original:
                continue  # those changed the original message, which is shown above
            body = blocks_to_lines(eph.blocks, names) if eph.blocks else mrkdwn_to_text(eph.text, names).split("\n")
            lines = [f"[{_clock(eph.ts, tz)}] {standin.bot_name} (app)  (only visible to you)"]
            lines.extend("    " + line for line in body)
            entries.append((float(eph.ts), lines))
    entries.sort(key=lambda entry: entry[0])
    for _, lines in entries:
        out.extend(lines)
    if len(out) == 1:
        out.append("(no messages)")
    return "\n".join(out) + "\n"


def render_view(standin: SlackStandIn, view_id: str) -> str:
    """A modal as the user sees it: title, blocks, then the close/submit buttons."""
    view = standin.view(view_id)
    if view is None:
        return f"(no view {view_id})\n"
    names = _Names(standin)
    title = _text(view.get("title"), names)
    lines = [f"┌ {title} ┐"]
    lines.extend("│ " + line for line in blocks_to_lines(view.get("blocks") or [], names))
    buttons = [f"[{_text(view[key], names)}]" for key in ("close", "submit") if view.get(key)]
    if buttons:
        lines.append("│ " + " ".join(buttons))
    if not standin.view_is_open(view_id):
        lines.append("(closed)")
    return "\n".join(lines) + "\n"
