"""What the Slack stand-in records and answers with: calls, messages, ephemerals, channels, users, user groups."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Call", "Channel", "Ephemeral", "Message", "ResponseContext", "User", "Usergroup", "format_ts"]


def format_ts(micros: int) -> str:
    """A Slack ``ts`` (``seconds.micros``) for a time in microseconds."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass(frozen=True)
class Call:
    """One request the stand-in answered (Web API method or ``response_url`` post)."""

    method: str
    args: dict
    time: float
    ok: bool
    error: str | None
    http_status: int
    response: dict | None = None


@dataclass
class Message:
    """A message as it is now (after any ``chat.update``); roots carry their ``replies``."""

    channel: str
    ts: str
    text: str
    blocks: list
    user: str
    bot_id: str | None
    posted_at: float
    thread_ts: str | None = None
    reply_broadcast: bool = False
    attachments: list | None = None
    metadata: dict | None = None
    unfurl_links: bool | None = None
    unfurl_media: bool | None = None
    edited_at: float | None = None
    edits: list[dict] = field(default_factory=list)  # earlier versions: {"text", "blocks", "time"}
    deleted: bool = False
    via: str = "chat.postMessage"
    replies: list[Message] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_slack(self) -> dict:
        """The message object as Slack puts it in API answers and interaction payloads."""
        out: dict[str, Any] = {"type": "message", "text": self.text, "ts": self.ts, "user": self.user}
        if self.bot_id:
            out["bot_id"] = self.bot_id
            out["subtype"] = "bot_message"
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.is_reply and self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if self.replies:
            out["reply_count"] = len(self.replies)
            out["latest_reply"] = self.replies[-1].ts
        if self.edited_at is not None:
            out["edited"] = {"user": self.user, "ts": format_ts(int(self.edited_at * 1_000_000))}
        if self.metadata:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass
class Ephemeral:
    """A ``chat.postEphemeral`` call, a ``response_url`` post, or a message returned in an ack.

    ``source`` is ``"chat.postEphemeral"``, ``"response_url"`` or ``"ack"``. ``response_type`` is
    ``"ephemeral"`` or ``"in_channel"`` (in-channel responses also appear in :meth:`messages`).
    """

    source: str
    channel: str | None
    user: str | None
    text: str
    blocks: list
    time: float
    ts: str
    thread_ts: str | None = None
    response_type: str = "ephemeral"
    replace_original: bool = False
    delete_original: bool = False
    response_id: str | None = None


@dataclass
class Channel:
    id: str
    name: str
    bot_member: bool = True
    is_private: bool = False
    is_archived: bool = False
    members: set[str] = field(default_factory=set)  # people in the channel (``chat.postEphemeral`` needs one)


@dataclass
class User:
    id: str
    name: str
    real_name: str
    team_id: str
    is_admin: bool = False
    is_owner: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    is_bot: bool = False
    deleted: bool = False
    tz: str = "Europe/Amsterdam"

    def to_slack(self) -> dict:
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": self.deleted,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": self.is_ultra_restricted,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": 0,
            "profile": {"real_name": self.real_name, "display_name": self.name, "team": self.team_id},
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    members: list[str]
    name: str = ""
    is_disabled: bool = False


@dataclass
class ResponseContext:
    """What a ``response_url`` is tied to: the invocation's channel, user and (for clicks) message."""

    id: str
    channel: str | None
    user: str | None
    issued_at: float
    message_ts: str | None = None
    is_ephemeral: bool = False
    uses: int = 0
