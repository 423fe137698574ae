"""A Slack Web API stand-in: a real WSGI app served by :class:`bot.httpserver.WSGIServer`.

It answers the methods migrate-bot uses with Slack-shaped bodies (HTTP 200 with
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``, HTTP 429 + ``Retry-After`` for rate
limits) and enforces what Slack enforces: single-use, short-lived ``trigger_id`` values, Block Kit
and modal limits, thread and channel-membership rules, who may edit which message.

Everything is recorded (:attr:`SlackStandIn.calls`, messages with their threads and edits, views,
ephemeral and ``response_url`` posts) so tests, the demo transcript and benchmarks can read what a
person in the channel would see.

Refusals, each as Slack documents it (sources: ``shared/reference/slack-platform.md`` and api.slack.com):

* Scopes: the token has only the scopes given (default :data:`DEFAULT_SCOPES`, the manifest's, **without**
  ``chat:write.public``): posting to a public channel the bot is not in is ``not_in_channel`` unless a test
  passes that scope (chat.postMessage docs; reference section 5).
* Rate limits are **on** (:mod:`~bot.rehearsal.slack_standin.ratelimits`: per-method tiers and about one
  ``chat.postMessage`` per second per channel with a short burst; 429 + ``Retry-After``). Tests that need bursts
  raise them with :meth:`SlackStandIn.set_rate_limits`. Scripted failures: :meth:`SlackStandIn.fail_next`.
* ``chat.postEphemeral`` needs the user in the channel (``user_not_in_channel``; chat.postEphemeral docs):
  members are given with ``add_channel(members=...)`` / :meth:`SlackStandIn.join`.
* Message metadata (api.slack.com/metadata, docs.slack.dev message-metadata): ``metadata`` that is not a JSON
  object is ``invalid_metadata_format``; one whose ``event_type`` is not an alphanumeric/underscore string or whose
  ``event_payload`` is not an object of strings, numbers, booleans, objects or arrays of objects is dropped (the
  message posts without it, as Slack ignores metadata that does not match the schema) and the answer carries the
  warning ``invalid_metadata_schema`` (the stand-in's own signal for tests).
* Acknowledgements (reference section 0.1, 2 and 3): the sender (``sender.py``) and the Socket Mode server drop
  an ack that arrives after :attr:`SlackStandIn.ack_timeout` (3 s) and record a violation
  (:attr:`SlackStandIn.violations`); the tests' world fixtures fail the test that caused one.

Simplifications (on purpose):

* Socket Mode: ``apps.connections.open`` answers with ``socket_mode_url`` (a ``SocketModeServer`` from
  ``socket_mode.py``); without one, with a URL nobody listens on.
* One workspace, one bot token and one app-level token; no OAuth, no user tokens, no Enterprise Grid.
* Lost answers are scripted: :meth:`SlackStandIn.fail_next` (an error or 5xx, optionally after applying the
  call), :meth:`SlackStandIn.drop_next` (no answer: the connection closes, optionally after applying) and
  :meth:`SlackStandIn.hold_next` (a slow answer, applied and answered when the test releases it).
* ``thread_ts`` must name an existing top-level message (real Slack may accept an unknown ``ts``
  and lose the reply); ``chat.update`` keeps the old ``text``/``blocks`` when one is omitted.
* Block Kit validation covers the limits the bot can hit (lengths, counts, required fields,
  duplicate ids), not every rule Slack has.
"""

from __future__ import annotations

import copy
import errno
import itertools
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from bot.httpserver import WSGIServer
from bot.rehearsal.slack_standin.limits import (
    MESSAGE_TEXT_MAX,
    RESPONSE_URL_TTL,
    RESPONSE_URL_USES,
    VIEW_MAX_BYTES,
    VIEW_STACK_MAX,
    validate_blocks,
    validate_home,
    validate_view,
)
from bot.rehearsal.slack_standin.ratelimits import RateLimiter
from bot.rehearsal.slack_standin.records import (
    Call,
    Channel,
    Ephemeral,
    Message,
    ResponseContext,
    User,
    Usergroup,
    format_ts,
)

__all__ = ["DEFAULT_SCOPES", "SlackApiFailure", "SlackStandIn"]

DEFAULT_SCOPES = frozenset(
    {
        "commands",
        "chat:write",
        "users:read",
        "usergroups:read",
        "channels:read",
        "groups:read",
    }
)

_METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "conversations.open": ("im:write",),
    "usergroups.users.list": ("usergroups:read",),
    "users.info": ("users:read",),
}

_TS_RE = re.compile(r"^\d{9,10}\.\d{6}$")
_EVENT_TYPE_RE = re.compile(r"^[A-Za-z0-9_]{1,255}$")
#: What Slack allows as an acknowledgement delay (reference section 0, item 1).
ACK_TIMEOUT = 3.0


# --------------------------------------------------------------------------------------------
# The stand-in's own state
# --------------------------------------------------------------------------------------------


@dataclass
class _Trigger:
    id: str
    issued_at: float
    user_id: str | None
    view_id: str | None
    used: bool = False


@dataclass
class _ViewState:
    view: dict
    user_id: str | None
    open: bool = True
    versions: list[dict] = field(default_factory=list)


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    remaining: int
    applied: bool = False  # the call takes effect, only its answer is the failure (an answer lost on the way)
    drop: bool = False  # no answer at all: the connection is closed (after applying the call when ``applied``)

    def exception(self) -> SlackApiFailure:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return SlackApiFailure(self.error, status=self.status, headers=headers)


class _Dropped(Exception):
    """The stand-in closes the connection without answering."""


class Hold:
    """A call of a method held before it is applied (a slow Slack): :attr:`arrived` is set when the call came,
    it is applied and answered after :meth:`release` (or after ``timeout`` seconds)."""

    def __init__(self, timeout: float) -> None:
        self.arrived = threading.Event()
        self._released = threading.Event()
        self.timeout = timeout

    def release(self) -> None:
        self._released.set()

    def wait_released(self) -> None:
        self._released.wait(self.timeout)


class SlackApiFailure(Exception):
    """Raised inside a handler to answer ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *, status: int = 200, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}
        self.extra = extra


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _with_block_ids(blocks: list | None) -> list:
    """Slack gives every block without a ``block_id`` a generated one."""
    out = []
    for block in blocks or []:
        if isinstance(block, dict) and not block.get("block_id"):
            block = {**block, "block_id": secrets.token_urlsafe(3)}
        out.append(copy.deepcopy(block))
    return out


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


_JSON_ARGS = ("blocks", "view", "attachments", "metadata", "users", "channels")


def _payload_value_ok(value: Any, *, nested: bool = False) -> bool:
    if isinstance(value, (str, bool, int, float)):
        return True
    if nested:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _payload_value_ok(v, nested=True) for k, v in value.items())
    if isinstance(value, list):
        return all(
            isinstance(item, dict)
            and all(isinstance(k, str) and _payload_value_ok(v, nested=True) for k, v in item.items())
            for item in value
        )
    return False


def _checked_metadata(value: Any) -> tuple[dict | None, str | None]:
    """``(metadata to keep, warning)``: not a JSON object is refused; a schema mismatch is dropped with a warning."""
    if value is None or value == "":
        return None, None
    if not isinstance(value, dict):
        raise SlackApiFailure("invalid_metadata_format")
    event_type, payload = value.get("event_type"), value.get("event_payload")
    valid = (
        isinstance(event_type, str)
        and _EVENT_TYPE_RE.match(event_type) is not None
        and isinstance(payload, dict)
        and all(isinstance(k, str) and _payload_value_ok(v) for k, v in payload.items())
    )
    if not valid:
        return None, "invalid_metadata_schema"
    return copy.deepcopy(value), None


# --------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------


class SlackStandIn:
    """A fake Slack workspace with a Web API on a real HTTP server.

    >>> with SlackStandIn() as slack:                                   # doctest: +SKIP
    ...     slack.add_channel("C1", "migrations")
    ...     WebClient(token=slack.bot_token, base_url=slack.api_url).chat_postMessage(channel="C1", text="hi")
    """

    def __init__(
        self,
        team_id: str = "T0MIGRATE",
        bot_token: str = "xoxb-standin",
        bot_user_id: str = "UMIGBOT",
        *,
        bot_id: str = "BMIGBOT",
        bot_name: str = "migrate-bot",
        app_id: str = "AMIGRATE",
        app_token: str = "xapp-standin",
        team_name: str = "Migrate Stand-in",
        team_domain: str = "migrate-standin",
        scopes: Iterable[str] = DEFAULT_SCOPES,
        trigger_ttl: float = 3.0,
        clock: Callable[[], float] = time.time,
        threads: int = 16,
        ack_timeout: float = ACK_TIMEOUT,
    ) -> None:
        self.team_id = team_id
        self.bot_token = bot_token
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.app_token = app_token
        #: Where ``apps.connections.open`` sends the app: set to a SocketModeServer's ``url``.
        self.socket_mode_url: str | None = None
        self.team_name = team_name
        self.team_domain = team_domain
        self.scopes = frozenset(scopes)
        self.trigger_ttl = trigger_ttl
        #: Seconds Slack waits for an acknowledgement; a later one is dropped and recorded in :attr:`violations`.
        self.ack_timeout = ack_timeout
        #: What the bot did that Slack would not take (late acks); tests fail when it is not empty.
        self.violations: list[str] = []
        self.rate_limits = RateLimiter(clock)
        self.clock = clock
        self._threads = threads

        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._channels: dict[str, Channel] = {}
        self._roots: dict[str, list[Message]] = defaultdict(list)
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._users: dict[str, User] = {}
        self._groups: dict[str, Usergroup] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._views: dict[str, _ViewState] = {}
        self._homes: dict[str, list[dict]] = {}  # user id -> published App Home views, oldest first
        self._stacks: dict[str, list[str]] = {}  # root view id -> open view ids, bottom first
        self._external_ids: dict[str, str] = {}
        self._responses: dict[str, ResponseContext] = {}
        self._ephemerals: list[Ephemeral] = []
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self._holds: dict[str, deque[Hold]] = defaultdict(deque)
        self._last_ts = 0
        self._ids = itertools.count(1)
        self._server: WSGIServer | None = None

        self._users[bot_user_id] = User(bot_user_id, bot_name, bot_name, team_id, is_bot=True)
        self._handlers: dict[str, Callable[[dict], dict]] = {
            "auth.test": self._auth_test,
            "apps.connections.open": self._apps_connections_open,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "usergroups.users.list": self._usergroups_users_list,
            "users.info": self._users_info,
            "conversations.info": self._conversations_info,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.open": self._conversations_open,
            "views.publish": self._views_publish,
        }

    # ---------------------------------------------------------------- serving

    def start(self, host: str = "127.0.0.1", port: int = 0) -> SlackStandIn:
        """Serve on a background thread (port 0 picks a free port)."""
        if self._server is None:
            server = WSGIServer(self, host, port, threads=self._threads)
            self._server = server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("SlackStandIn is not started; call start() first")
        return self._server.url

    @property
    def api_url(self) -> str:
        """The ``WebClient(base_url=...)`` value, e.g. ``http://127.0.0.1:54321/api/``."""
        return f"{self.url}/api/"

    # ---------------------------------------------------------------- workspace setup

    def add_channel(
        self,
        channel_id: str,
        name: str,
        *,
        bot_member: bool = True,
        is_private: bool = False,
        is_archived: bool = False,
        members: Iterable[str] = (),
    ) -> Channel:
        """A channel with these people in it (``members``; the bot is ``bot_member``)."""
        with self._lock:
            channel = Channel(channel_id, name.lstrip("#"), bot_member, is_private, is_archived, set(members))
            self._channels[channel_id] = channel
            return copy.copy(channel)

    def join(self, channel_id: str, *user_ids: str) -> None:
        """People join a channel."""
        with self._lock:
            self._channels[channel_id].members.update(user_ids)

    def leave(self, channel_id: str, *user_ids: str) -> None:
        """People leave a channel (ephemerals to them there fail with ``user_not_in_channel``)."""
        with self._lock:
            self._channels[channel_id].members.difference_update(user_ids)

    def record_violation(self, what: str) -> None:
        """Something the bot did that Slack would not take (e.g. an ack after :attr:`ack_timeout`)."""
        with self._lock:
            self.violations.append(what)

    def set_bot_member(self, channel_id: str, member: bool) -> None:
        """Invite (``True``) or remove (``False``) the bot."""
        with self._lock:
            self._channels[channel_id].bot_member = member

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        is_admin: bool = False,
        is_restricted: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Amsterdam",
        real_name: str | None = None,
        is_bot: bool = False,
        is_ultra_restricted: bool = False,
    ) -> User:
        with self._lock:
            user = User(
                user_id,
                name,
                real_name or name,
                self.team_id,
                is_admin=is_admin,
                is_restricted=is_restricted,
                is_ultra_restricted=is_ultra_restricted,
                is_bot=is_bot,
                deleted=deleted,
                tz=tz,
            )
            self._users[user_id] = user
            return copy.copy(user)

    def add_usergroup(
        self, group_id: str, handle: str, members: Iterable[str], *, name: str = "", is_disabled: bool = False
    ) -> Usergroup:
        with self._lock:
            group = Usergroup(group_id, handle.lstrip("@"), list(members), name or handle, is_disabled)
            self._groups[group_id] = group
            return copy.deepcopy(group)

    def post_as_user(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> str:
        """Seed a message written by a person (the bot may not ``chat.update`` it). Returns its ts."""
        with self._lock:
            return self._store_message(
                channel_id, text=text, blocks=[], user=user_id, bot_id=None, thread_ts=thread_ts, via="user"
            ).ts

    def issue_trigger(self, user_id: str | None = None, *, view_id: str | None = None) -> str:
        """Register a fresh ``trigger_id`` (as Slack does for every command, click and submission)."""
        with self._lock:
            n = next(self._ids)
            trigger_id = f"{int(self.clock())}{n:04d}.{self.team_id[1:]}.{secrets.token_hex(12)}"
            self._triggers[trigger_id] = _Trigger(trigger_id, self.clock(), user_id, view_id)
            return trigger_id

    def issue_response_url(
        self, *, channel: str | None, user: str | None, message_ts: str | None = None, is_ephemeral: bool = False
    ) -> str:
        """Register a ``response_url`` on this server (5 uses, 30 minutes, like Slack)."""
        with self._lock:
            rid = f"{next(self._ids)}{secrets.token_hex(8)}"
            self._responses[rid] = ResponseContext(rid, channel, user, self.clock(), message_ts, is_ephemeral)
            return f"{self.url}/response/{rid}"

    # ---------------------------------------------------------------- failure scripting

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int | None = None,
        retry_after: int = 1,
        count: int = 1,
        applied: bool = False,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail.

        Without ``error``: HTTP 429 (or ``status``) with ``Retry-After`` and ``"ratelimited"``.
        With ``error``: that Slack error, HTTP 200 unless ``status`` says otherwise.
        ``applied``: the call still takes effect (e.g. the message is posted) and only the answer fails, as when
        Slack's answer is lost on the way (use a 5xx ``status``).
        ``method`` may be ``"response_url"`` for posts to response URLs.
        """
        if error is None:
            http_status = status or 429
            error = "ratelimited" if http_status == 429 else "fatal_error"
            after: int | None = retry_after if http_status == 429 else None
        else:
            http_status = status or 200
            after = retry_after if http_status == 429 else None
        with self._lock:
            self._failures[method].append(_Failure(error, http_status, after, count, applied))

    def drop_next(self, method: str, *, applied: bool = True, count: int = 1) -> None:
        """Close the connection of the next ``count`` calls of ``method`` without an answer; with ``applied`` the
        call takes effect first (the answer is lost on the way back, as when a connection drops mid-call)."""
        with self._lock:
            self._failures[method].append(_Failure("connection_dropped", 0, None, count, applied, drop=True))

    def hold_next(self, method: str, *, timeout: float = 30.0) -> Hold:
        """Hold the next call of ``method`` before it takes effect until the returned :class:`Hold` is released:
        a slow answer (a long Retry-After, a slow Slack) that outlasts a poll tick."""
        hold = Hold(timeout)
        with self._lock:
            self._holds[method].append(hold)
        return hold

    def set_rate_limits(
        self,
        *,
        enabled: bool | None = None,
        per_channel: tuple[float, float] | None | bool = True,
        tiers: dict[int, tuple[float, float]] | None = None,
    ) -> None:
        """Raise (or lower) Slack's limits for a test that needs bursts: ``per_channel=(per_second, burst)`` for
        ``chat.postMessage`` (None: off), ``tiers={tier: (per_second, burst)}``, ``enabled=False``: no limits."""
        self.rate_limits.configure(enabled=enabled, per_channel=per_channel, tiers=tiers)

    def enable_post_rate_limit(self, per_second: float = 1.0, burst: int = 3) -> None:
        """Set the ``chat.postMessage`` per-channel limit (on by default at 1/s, burst 3)."""
        self.rate_limits.configure(per_channel=(per_second, float(burst)))

    def disable_post_rate_limit(self) -> None:
        self.rate_limits.configure(per_channel=None)

    # ---------------------------------------------------------------- reading what happened

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if c.method == method]

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 5.0, predicate: Callable[[Call], bool] | None = None
    ) -> list[Call]:
        """Block until at least ``count`` calls of ``method`` (matching ``predicate``) were answered.

        Returns the matching calls; raises ``TimeoutError`` listing what was seen instead.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                matched = [c for c in self._calls if c.method == method and (predicate is None or predicate(c))]
                if len(matched) >= count:
                    return matched
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(f"{c.method}({'ok' if c.ok else c.error})" for c in self._calls[-20:])
                    raise TimeoutError(
                        f"waited {timeout}s for {count} x {method}, got {len(matched)}; last calls: {seen or 'none'}"
                    )
                self._cond.wait(remaining)

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of ``channel`` in posting order, current versions, with ``replies``."""
        with self._lock:
            return copy.deepcopy(self._roots.get(channel, []))

    def message(self, channel: str, ts: str) -> Message | None:
        """Any message (root or reply) by ``ts``."""
        with self._lock:
            found = self._by_ts.get((channel, ts))
            return copy.deepcopy(found) if found else None

    def thread(self, channel: str, ts: str) -> list[Message]:
        """The replies under the root message ``ts`` (without the root), oldest first."""
        with self._lock:
            root = self._by_ts.get((channel, ts))
            return copy.deepcopy(root.replies) if root else []

    @property
    def ephemerals(self) -> list[Ephemeral]:
        with self._lock:
            return copy.deepcopy(self._ephemerals)

    @property
    def views(self) -> dict[str, dict]:
        """view_id -> the view as it is now (Slack's shape, with ``hash``), open or closed."""
        with self._lock:
            return {vid: copy.deepcopy(state.view) for vid, state in self._views.items()}

    def home(self, user_id: str) -> dict | None:
        """The App Home view last published for ``user_id`` (``views.publish``), or None."""
        with self._lock:
            versions = self._homes.get(user_id)
            return copy.deepcopy(versions[-1]) if versions else None

    def home_versions(self, user_id: str) -> list[dict]:
        """Every App Home view published for ``user_id``, oldest first."""
        with self._lock:
            return copy.deepcopy(self._homes.get(user_id, []))

    def view(self, view_id: str) -> dict | None:
        with self._lock:
            state = self._views.get(view_id)
            return copy.deepcopy(state.view) if state else None

    def view_is_open(self, view_id: str) -> bool:
        with self._lock:
            state = self._views.get(view_id)
            return bool(state and state.open)

    def view_versions(self, view_id: str) -> list[dict]:
        """Every version of a view (opened, then each update), oldest first."""
        with self._lock:
            state = self._views.get(view_id)
            return copy.deepcopy(state.versions) if state else []

    def view_user(self, view_id: str) -> str | None:
        with self._lock:
            state = self._views.get(view_id)
            return state.user_id if state else None

    @property
    def channels(self) -> dict[str, Channel]:
        with self._lock:
            return {cid: copy.copy(c) for cid, c in self._channels.items()}

    @property
    def users(self) -> dict[str, User]:
        with self._lock:
            return {uid: copy.copy(u) for uid, u in self._users.items()}

    @property
    def usergroups(self) -> dict[str, Usergroup]:
        with self._lock:
            return copy.deepcopy(self._groups)

    # ---------------------------------------------------------------- view lifecycle (driven by the sender)

    def close_view(self, view_id: str, *, clear: bool = False) -> None:
        """The user closed (or submitted) a view; ``clear`` closes the whole stack."""
        with self._lock:
            state = self._views.get(view_id)
            if state is None:
                return
            root = state.view.get("root_view_id") or view_id
            stack = self._stacks.get(root, [])
            if clear or root == view_id:
                to_close = list(stack) or [view_id]
                self._stacks.pop(root, None)
            else:
                to_close = stack[stack.index(view_id) :] if view_id in stack else [view_id]
                del stack[len(stack) - len(to_close) :]
            for vid in to_close:
                if vid in self._views:
                    self._views[vid].open = False

    def apply_view_submission_ack(self, view_id: str, ack: dict | None) -> dict:
        """Do what Slack does with a ``view_submission`` acknowledgement body.

        Empty ack closes the view; ``response_action`` ``update``/``push``/``clear``/``errors`` act
        as documented. Returns ``{"action": ..., "errors": ..., "view_id": ...}``.
        """
        action = (ack or {}).get("response_action")
        with self._lock:
            if action == "errors":
                return {"action": "errors", "errors": dict(ack.get("errors") or {}), "view_id": view_id}
            if action == "clear":
                self.close_view(view_id, clear=True)
                return {"action": "clear", "errors": {}, "view_id": None}
            if action == "update":
                problems = validate_view(ack.get("view"))
                if problems:
                    return {"action": "update", "errors": {"view": problems}, "view_id": view_id}
                try:
                    self._replace_view(self._views[view_id], ack["view"])
                except SlackApiFailure as failure:
                    return {"action": "update", "errors": {"view": [failure.error]}, "view_id": view_id}
                return {"action": "update", "errors": {}, "view_id": view_id}
            if action == "push":
                problems = validate_view(ack.get("view"))
                state = self._views[view_id]
                root = state.view.get("root_view_id") or view_id
                if problems or len(self._stacks.get(root, [])) >= VIEW_STACK_MAX:
                    return {
                        "action": "push",
                        "errors": {"view": problems or ["push_limit_reached"]},
                        "view_id": view_id,
                    }
                try:
                    new = self._create_view(ack["view"], state.user_id, root=root, previous=view_id)
                except SlackApiFailure as failure:
                    return {"action": "push", "errors": {"view": [failure.error]}, "view_id": view_id}
                return {"action": "push", "errors": {}, "view_id": new["id"]}
            self.close_view(view_id)
            return {"action": "close", "errors": {}, "view_id": None}

    def deliver_ack_message(self, response_url: str, body: dict, *, user: str | None = None) -> None:
        """A slash-command ack that carries a message: Slack shows it like a ``response_url`` post
        (without spending one of its five uses)."""
        rid = response_url.rstrip("/").rsplit("/", 1)[-1]
        with self._lock:
            ctx = self._responses.get(rid)
            if ctx is None:
                return
            self._apply_response(ctx, body, source="ack")

    # ---------------------------------------------------------------- WSGI

    def __call__(self, environ: dict, start_response: Callable) -> list[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        if path.startswith("/api/"):
            try:
                status, headers, body = self._handle_api(path[len("/api/") :], environ, raw)
            except _Dropped:
                # An ignored socket error makes cheroot close the connection without writing anything.
                raise ConnectionResetError(errno.ECONNRESET, "connection dropped by the stand-in") from None
            payload = json.dumps(body).encode()
            headers = {"Content-Type": "application/json; charset=utf-8", **headers}
        elif path.startswith("/response/") and method == "POST":
            status, text = self._handle_response_url(path[len("/response/") :], raw)
            payload = text.encode()
            headers = {"Content-Type": "text/html"}
        else:
            status, payload, headers = 404, b"Not Found", {"Content-Type": "text/plain"}
        headers["Content-Length"] = str(len(payload))
        start_response(f"{status} {_REASONS.get(status, 'OK')}", list(headers.items()))
        return [payload]

    def _parse_args(self, environ: dict, raw: bytes) -> dict:
        args: dict[str, Any] = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        content_type = (environ.get("CONTENT_TYPE") or "").lower()
        if raw:
            if "application/json" in content_type:
                try:
                    parsed = json.loads(raw.decode("utf-8"))
                except ValueError:
                    raise SlackApiFailure("invalid_json") from None
                if not isinstance(parsed, dict):
                    raise SlackApiFailure("invalid_json")
                args.update(parsed)
            elif "multipart/form-data" in content_type:
                raise SlackApiFailure("invalid_form_data")  # file uploads are not part of this bot
            else:
                try:
                    args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
                except (ValueError, UnicodeDecodeError):
                    raise SlackApiFailure("invalid_form_data") from None
        for key in _JSON_ARGS:
            if key in args:
                args[key] = _maybe_json(args[key])
        return args

    def _handle_api(self, method: str, environ: dict, raw: bytes) -> tuple[int, dict[str, str], dict]:
        headers: dict[str, str] = {}
        args: dict[str, Any] = {}
        try:
            args = self._parse_args(environ, raw)
            token = args.pop("token", None)
            auth = environ.get("HTTP_AUTHORIZATION", "")
            if auth.lower().startswith("bearer "):
                token = auth[7:].strip()
        except SlackApiFailure as failure:
            return self._finish(method, args, failure)
        with self._lock:
            hold = self._holds[method].popleft() if self._holds.get(method) else None
        if hold is not None:
            hold.arrived.set()
            hold.wait_released()
        with self._lock:
            try:
                handler = self._handlers.get(method)
                if not token:
                    raise SlackApiFailure("not_authed")
                if token == self.bot_token:
                    kind = "bot"
                    headers["x-oauth-scopes"] = ",".join(sorted(self.scopes))
                elif token == self.app_token:
                    kind = "app"
                    headers["x-oauth-scopes"] = "connections:write"
                else:
                    raise SlackApiFailure("invalid_auth")
                if handler is None:
                    raise SlackApiFailure("unknown_method")
                if kind == "app" and method not in ("apps.connections.open", "auth.test"):
                    raise SlackApiFailure("not_allowed_token_type")
                if kind == "bot" and method == "apps.connections.open":
                    raise SlackApiFailure("not_allowed_token_type")
                after_effect = self._injected_failure(method)
                if kind == "bot":
                    for scope in _METHOD_SCOPES.get(method, ()):
                        if scope not in self.scopes:
                            raise SlackApiFailure("missing_scope", needed=scope, provided=",".join(sorted(self.scopes)))
                wait = self.rate_limits.method(method)
                if wait is not None:
                    raise SlackApiFailure("ratelimited", status=429, headers={"Retry-After": str(wait)})
                body = handler(args)
                if after_effect is not None:
                    if after_effect.drop:
                        self._record(Call(method, args, self.clock(), True, "connection_dropped", 0, None))
                        raise _Dropped()
                    raise after_effect.exception()
                body = {"ok": True, **body}
                call = Call(method, args, self.clock(), True, None, 200, body)
                self._record(call)
                return 200, headers, body
            except SlackApiFailure as failure:
                status, fail_headers, body = self._finish(method, args, failure)
                return status, {**headers, **fail_headers}, body

    def _finish(self, method: str, args: dict, failure: SlackApiFailure) -> tuple[int, dict[str, str], dict]:
        body = {"ok": False, "error": failure.error, **failure.extra}
        with self._lock:
            self._record(Call(method, args, self.clock(), False, failure.error, failure.status, body))
        return failure.status, dict(failure.headers), body

    def _record(self, call: Call) -> None:
        self._calls.append(call)
        self._cond.notify_all()

    def _injected_failure(self, method: str) -> _Failure | None:
        """Take the next scripted failure of ``method``; raise it now unless it applies the call first."""
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.popleft()
        if not failure.applied:
            if failure.drop:
                self._record(Call(method, {}, self.clock(), False, "connection_dropped", 0, None))
                raise _Dropped()
            raise failure.exception()
        return failure

    # ---------------------------------------------------------------- shared rules

    def _channel_for_write(self, channel_ref: Any) -> Channel:
        if not channel_ref or not isinstance(channel_ref, str):
            raise SlackApiFailure("channel_not_found")
        channel = self._channels.get(channel_ref)
        if channel is None and channel_ref in self._users:
            # Posting to a user id opens the app's DM with that person (Slack answers with a D… channel).
            user = self._users[channel_ref]
            if user.deleted:
                raise SlackApiFailure("user_not_found")
            dm_id = "D" + channel_ref.lstrip("UW")
            channel = self._channels.setdefault(dm_id, Channel(dm_id, f"dm-{user.name}", True, True))
        if channel is None:  # Slack also accepts "#name" / "name" for chat.postMessage
            name = channel_ref.lstrip("#")
            channel = next((c for c in self._channels.values() if c.name == name), None)
        if channel is None:
            raise SlackApiFailure("channel_not_found")
        if not channel.bot_member:
            if channel.is_private:
                raise SlackApiFailure("channel_not_found")
            if "chat:write.public" not in self.scopes:
                raise SlackApiFailure("not_in_channel")
        if channel.is_archived:
            raise SlackApiFailure("is_archived")
        return channel

    def _check_content(self, args: dict, *, required: bool = True) -> tuple[str | None, list | None]:
        text = args.get("text")
        blocks = args.get("blocks")
        attachments = args.get("attachments")
        if text is not None and not isinstance(text, str):
            text = str(text)
        if blocks is not None:
            if isinstance(blocks, str) or not isinstance(blocks, list):
                raise SlackApiFailure("invalid_blocks_format")
            problems = validate_blocks(blocks)
            if problems:
                raise SlackApiFailure(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
                )
        if required and not text and not blocks and not attachments:
            raise SlackApiFailure("no_text")
        if text is not None and len(text) > MESSAGE_TEXT_MAX:
            raise SlackApiFailure("msg_too_long")
        return text, blocks

    def _next_ts(self) -> str:
        micros = max(int(self.clock() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return format_ts(micros)

    def _store_message(
        self,
        channel_id: str,
        *,
        text: str,
        blocks: list,
        user: str,
        bot_id: str | None,
        thread_ts: str | None = None,
        reply_broadcast: bool = False,
        via: str,
        attachments: list | None = None,
        metadata: dict | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
    ) -> Message:
        root: Message | None = None
        if thread_ts:
            root = self._by_ts.get((channel_id, thread_ts))
            if root is None or root.is_reply or root.deleted:
                raise SlackApiFailure("thread_not_found")
        message = Message(
            channel_id,
            self._next_ts(),
            text or "",
            _with_block_ids(blocks),
            user,
            bot_id,
            self.clock(),
            thread_ts=thread_ts,
            reply_broadcast=bool(thread_ts and reply_broadcast),
            attachments=attachments,
            metadata=metadata,
            unfurl_links=unfurl_links,
            unfurl_media=unfurl_media,
            via=via,
        )
        self._by_ts[(channel_id, message.ts)] = message
        if root is not None:
            root.replies.append(message)
        else:
            self._roots[channel_id].append(message)
        return message

    def _edit_message(
        self, message: Message, text: str | None, blocks: list | None, attachments: list | None = None
    ) -> None:
        message.edits.append(
            {
                "text": message.text,
                "blocks": copy.deepcopy(message.blocks),
                "time": message.edited_at or message.posted_at,
            }
        )
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = _with_block_ids(blocks)
        if attachments is not None:
            message.attachments = attachments
        message.edited_at = self.clock()

    def _rate_limit_post(self, channel_id: str) -> None:
        wait = self.rate_limits.post(channel_id)
        if wait is not None:
            raise SlackApiFailure("ratelimited", status=429, headers={"Retry-After": str(wait)})

    # ---------------------------------------------------------------- methods

    def _auth_test(self, args: dict) -> dict:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: dict) -> dict:
        # The URL of a SocketModeServer (bot.rehearsal.slack_standin.socket_mode) when one was attached; else nobody listens.
        ticket = secrets.token_hex(8)
        base = self.socket_mode_url or f"ws://{self.url.split('://', 1)[1]}/link/"
        return {"url": f"{base}?ticket={ticket}&app_id={self.app_id}"}

    def _exchange_trigger(self, trigger_id: Any) -> _Trigger:
        if not trigger_id:
            raise SlackApiFailure(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]}
            )
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise SlackApiFailure("invalid_trigger_id")
        if trigger.used:
            raise SlackApiFailure("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > self.trigger_ttl:
            raise SlackApiFailure("expired_trigger_id")
        trigger.used = True
        return trigger

    def _checked_view(self, view: Any) -> dict:
        if isinstance(view, str):
            raise SlackApiFailure(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] view must be a JSON object"]}
            )
        problems = validate_view(view)
        if problems:
            raise SlackApiFailure(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
            )
        if len(json.dumps(view)) > VIEW_MAX_BYTES:
            raise SlackApiFailure("view_too_large")
        return view

    def _new_hash(self) -> str:
        return f"{int(self.clock())}.{secrets.token_hex(4)}"

    def _create_view(self, view: dict, user_id: str | None, *, root: str | None, previous: str | None) -> dict:
        external_id = view.get("external_id") or ""
        if external_id and external_id in self._external_ids:
            raise SlackApiFailure("duplicate_external_id")
        view_id = f"V0MIG{next(self._ids):06d}"
        stored = self._slack_view(view, view_id, root or view_id, previous)
        state = _ViewState(stored, user_id, True, [copy.deepcopy(stored)])
        self._views[view_id] = state
        self._stacks.setdefault(root or view_id, []).append(view_id)
        if external_id:
            self._external_ids[external_id] = view_id
        return stored

    def _slack_view(self, view: dict, view_id: str, root: str, previous: str | None) -> dict:
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "title": copy.deepcopy(view.get("title")),
            "submit": copy.deepcopy(view.get("submit")),
            "close": copy.deepcopy(view.get("close")),
            "blocks": _with_block_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_hash(),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root,
            "previous_view_id": previous,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _replace_view(self, state: _ViewState, view: dict) -> dict:
        old = state.view
        external_id = view.get("external_id") or ""
        if external_id and self._external_ids.get(external_id, old["id"]) != old["id"]:
            raise SlackApiFailure("duplicate_external_id")
        new = self._slack_view(view, old["id"], old["root_view_id"], old["previous_view_id"])
        state.view = new
        state.versions.append(copy.deepcopy(new))
        if external_id:
            self._external_ids[external_id] = old["id"]
        return new

    def _views_open(self, args: dict) -> dict:
        view = self._checked_view(args.get("view"))
        trigger = self._exchange_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        return {"view": copy.deepcopy(self._create_view(view, trigger.user_id, root=None, previous=None))}

    def _views_push(self, args: dict) -> dict:
        view = self._checked_view(args.get("view"))
        trigger = self._exchange_trigger(args.get("trigger_id") or args.get("interactivity_pointer"))
        base = trigger.view_id
        if base is None:  # a trigger from outside a modal: push onto the user's newest open modal
            candidates = [vid for vid, s in self._views.items() if s.open and s.user_id == trigger.user_id]
            base = candidates[-1] if candidates else None
        if base is None or not self._views[base].open:
            raise SlackApiFailure("not_found")
        root = self._views[base].view["root_view_id"]
        if len(self._stacks.get(root, [])) >= VIEW_STACK_MAX:
            raise SlackApiFailure("push_limit_reached")
        previous = self._stacks[root][-1]
        return {"view": copy.deepcopy(self._create_view(view, trigger.user_id, root=root, previous=previous))}

    def _views_update(self, args: dict) -> dict:
        view_id = args.get("view_id")
        external_id = args.get("external_id")
        if not view_id and not external_id:
            raise SlackApiFailure(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] either view_id or external_id is required"]},
            )
        if not view_id:
            view_id = self._external_ids.get(external_id)
        state = self._views.get(view_id or "")
        if state is None or not state.open:
            raise SlackApiFailure("not_found")
        expected = args.get("hash")
        if expected and expected != state.view["hash"]:
            raise SlackApiFailure("hash_conflict")
        view = self._checked_view(args.get("view"))
        return {"view": copy.deepcopy(self._replace_view(state, view))}

    def _views_publish(self, args: dict) -> dict:
        """``views.publish(user_id, view, hash?)``: the user's App Home tab (no trigger needed)."""
        user_id = args.get("user_id") or ""
        if user_id not in self._users:
            raise SlackApiFailure("user_not_found")
        view = _maybe_json(args.get("view"))
        problems = validate_home(view)
        if problems:
            raise SlackApiFailure(
                "invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]}
            )
        if len(json.dumps(view)) > VIEW_MAX_BYTES:
            raise SlackApiFailure("view_too_large")
        versions = self._homes.setdefault(user_id, [])
        expected = args.get("hash")
        if expected and versions and expected != versions[-1]["hash"]:
            raise SlackApiFailure("hash_conflict")
        view_id = versions[-1]["id"] if versions else f"V0HOME{next(self._ids):06d}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": "home",
            "blocks": _with_block_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_hash(),
            "app_id": self.app_id,
            "bot_id": self.bot_id,
        }
        versions.append(stored)
        return {"view": copy.deepcopy(stored)}

    def _chat_post_message(self, args: dict) -> dict:
        channel = self._channel_for_write(args.get("channel"))
        text, blocks = self._check_content(args)
        thread_ts = args.get("thread_ts") or None
        if thread_ts is not None:
            thread_ts = str(thread_ts)
            if not _TS_RE.match(thread_ts):
                raise SlackApiFailure("invalid_thread_ts")
        metadata, metadata_warning = _checked_metadata(args.get("metadata"))
        self._rate_limit_post(channel.id)
        attachments = args.get("attachments") if isinstance(args.get("attachments"), list) else None
        message = self._store_message(
            channel.id,
            text=text or "",
            blocks=blocks or [],
            user=self.bot_user_id,
            bot_id=self.bot_id,
            thread_ts=thread_ts,
            reply_broadcast=_truthy(args.get("reply_broadcast", False)),
            via="chat.postMessage",
            attachments=attachments,
            metadata=metadata,
            unfurl_links=_truthy(args["unfurl_links"]) if "unfurl_links" in args else None,
            unfurl_media=_truthy(args["unfurl_media"]) if "unfurl_media" in args else None,
        )
        answer = {"channel": channel.id, "ts": message.ts, "message": message.to_slack()}
        if metadata_warning:
            answer.update(warning=metadata_warning, response_metadata={"warnings": [metadata_warning]})
        return answer

    def _chat_update(self, args: dict) -> dict:
        channel_id = args.get("channel")
        if channel_id not in self._channels:  # chat.update needs a channel id, not a name
            raise SlackApiFailure("channel_not_found")
        channel = self._channel_for_write(channel_id)
        ts = str(args.get("ts") or "")
        message = self._by_ts.get((channel.id, ts))
        if message is None or message.deleted:
            raise SlackApiFailure("message_not_found")
        if message.bot_id != self.bot_id:
            raise SlackApiFailure("cant_update_message")
        text, blocks = self._check_content(args)
        attachments = args.get("attachments") if isinstance(args.get("attachments"), list) else None
        self._edit_message(message, text, blocks, attachments)
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.to_slack()}

    def _chat_post_ephemeral(self, args: dict) -> dict:
        channel = self._channel_for_write(args.get("channel"))
        user_id = args.get("user")
        if not user_id:
            raise SlackApiFailure("user_not_found")
        user = self._users.get(user_id)
        if user is not None and user.deleted:
            raise SlackApiFailure("user_not_in_channel")
        in_dm = channel.id == "D" + str(user_id).lstrip("UW")
        if not in_dm and user_id not in channel.members:
            raise SlackApiFailure("user_not_in_channel")
        text, blocks = self._check_content(args)
        thread_ts = args.get("thread_ts") or None
        ts = self._next_ts()
        self._ephemerals.append(
            Ephemeral(
                "chat.postEphemeral",
                channel.id,
                user_id,
                text or "",
                blocks or [],
                self.clock(),
                ts,
                thread_ts=thread_ts,
            )
        )
        return {"message_ts": ts}

    def _chat_get_permalink(self, args: dict) -> dict:
        channel_id = args.get("channel")
        if channel_id not in self._channels:
            raise SlackApiFailure("channel_not_found")
        ts = str(args.get("message_ts") or "")
        message = self._by_ts.get((channel_id, ts))
        if message is None or message.deleted:
            raise SlackApiFailure("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{channel_id}/p{ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
        return {"channel": channel_id, "permalink": link}

    def _usergroups_users_list(self, args: dict) -> dict:
        group = self._groups.get(args.get("usergroup") or "")
        if group is None:
            raise SlackApiFailure("no_such_subteam")
        if group.is_disabled and not _truthy(args.get("include_disabled", False)):
            raise SlackApiFailure("no_such_subteam")
        return {"users": list(group.members)}

    def _users_info(self, args: dict) -> dict:
        user = self._users.get(args.get("user") or "")
        if user is None:
            raise SlackApiFailure("user_not_found")
        return {"user": user.to_slack()}

    def _conversations_info(self, args: dict) -> dict:
        channel = self._visible_channel(args, "read")
        return {
            "channel": {
                "id": channel.id,
                "name": channel.name,
                "is_channel": not channel.is_private,
                "is_group": channel.is_private,
                "is_im": False,
                "is_private": channel.is_private,
                "is_archived": channel.is_archived,
                "is_member": channel.bot_member,
                "context_team_id": self.team_id,
            }
        }

    def _visible_channel(self, args: dict, access: str) -> Channel:
        """The channel named in ``args`` if the bot may see it with ``channels:<access>`` / ``groups:<access>``
        (private channels only when the bot is a member, as in Slack)."""
        channel = self._channels.get(args.get("channel") or "")
        if channel is None or (channel.is_private and not channel.bot_member):
            raise SlackApiFailure("channel_not_found")
        kind = "im" if channel.id.startswith("D") else "groups" if channel.is_private else "channels"
        needed = f"{kind}:{access}"
        if needed not in self.scopes:
            raise SlackApiFailure("missing_scope", needed=needed, provided=",".join(sorted(self.scopes)))
        return channel

    def _readable_channel(self, args: dict) -> Channel:
        channel = self._visible_channel(args, "history")
        if not channel.bot_member:
            raise SlackApiFailure("not_in_channel")
        return channel

    @staticmethod
    def _page(items: list, args: dict) -> dict:
        """``limit`` + ``cursor`` paging (cursor = offset); ``metadata`` only with ``include_all_metadata``."""
        try:
            limit = max(1, min(int(args.get("limit") or 1000), 1000))
            offset = int(args.get("cursor") or 0)
        except (TypeError, ValueError):
            raise SlackApiFailure("invalid_cursor") from None
        more = offset + limit < len(items)
        messages = []
        for message in items[offset : offset + limit]:
            out = message.to_slack()
            if not _truthy(args.get("include_all_metadata", False)):
                out.pop("metadata", None)
            messages.append(out)
        return {
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        }

    def _conversations_open(self, args: dict) -> dict:
        """The app's DM with one user (``users``), opened once and the same channel every time after."""
        users = [u for u in str(args.get("users") or "").split(",") if u]
        if len(users) != 1 or users[0] not in self._users:
            raise SlackApiFailure("user_not_found")
        channel = self._channel_for_write(users[0])
        return {"channel": {"id": channel.id, "is_im": True}, "already_open": True}

    def _conversations_history(self, args: dict) -> dict:
        """Top-level messages, newest first, after ``oldest`` (a ts), with paging (simplified: no ``latest``)."""
        channel = self._readable_channel(args)
        oldest = float(args.get("oldest") or 0)
        roots = [m for m in reversed(self._roots.get(channel.id, [])) if not m.deleted and float(m.ts) > oldest]
        return self._page(roots, args)

    def _conversations_replies(self, args: dict) -> dict:
        """A thread: the root, then its replies, oldest first, with paging."""
        channel = self._readable_channel(args)
        root = self._by_ts.get((channel.id, str(args.get("ts") or "")))
        if root is None or root.deleted:
            raise SlackApiFailure("thread_not_found")
        if root.is_reply:
            root = self._by_ts[(channel.id, root.thread_ts)]
        return self._page([m for m in [root, *root.replies] if not m.deleted], args)

    # ---------------------------------------------------------------- response_url

    def _handle_response_url(self, rid: str, raw: bytes) -> tuple[int, str]:
        try:
            body = json.loads(raw.decode("utf-8") or "{}")
            if not isinstance(body, dict):
                raise ValueError
        except ValueError:
            body = None
        with self._lock:
            args = body if isinstance(body, dict) else {"raw": raw.decode("utf-8", "replace")}
            status, text = self._response_url_post(rid, body)
            self._record(
                Call(
                    "response_url",
                    {**args, "response_id": rid},
                    self.clock(),
                    status == 200,
                    None if status == 200 else text,
                    status,
                    None,
                )
            )
            return status, text

    def _response_url_post(self, rid: str, body: dict | None) -> tuple[int, str]:
        queue = self._failures.get("response_url")
        if queue:
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
            return failure.status, failure.error
        ctx = self._responses.get(rid)
        if ctx is None:
            return 404, "no_service"
        if body is None:
            return 400, "invalid_payload"
        if self.clock() - ctx.issued_at > RESPONSE_URL_TTL:
            return 404, "expired_url"
        if ctx.uses >= RESPONSE_URL_USES:
            return 404, "used_url"
        ctx.uses += 1
        try:
            self._apply_response(ctx, body, source="response_url")
        except SlackApiFailure as failure:
            return 400, failure.error
        return 200, "ok"

    def _apply_response(self, ctx: ResponseContext, body: dict, *, source: str) -> None:
        delete = _truthy(body.get("delete_original", False))
        replace = _truthy(body.get("replace_original", False))
        response_type = body.get("response_type") or "ephemeral"
        text, blocks = (None, None) if delete else self._check_content(body)
        original = self._by_ts.get((ctx.channel, ctx.message_ts)) if ctx.channel and ctx.message_ts else None
        if original is not None and not ctx.is_ephemeral and (delete or replace):
            if delete:
                original.deleted = True
                original.edited_at = self.clock()
            else:
                self._edit_message(original, text or "", blocks if blocks is not None else [])
        elif response_type == "in_channel" and ctx.channel and not delete:
            self._store_message(
                ctx.channel,
                text=text or "",
                blocks=blocks or [],
                user=self.bot_user_id,
                bot_id=self.bot_id,
                thread_ts=body.get("thread_ts") or None,
                via=source,
            )
        self._ephemerals.append(
            Ephemeral(
                source,
                ctx.channel,
                ctx.user,
                text or "",
                list(blocks or []),
                self.clock(),
                self._next_ts(),
                thread_ts=body.get("thread_ts"),
                response_type=response_type,
                replace_original=replace,
                delete_original=delete,
                response_id=ctx.id,
            )
        )


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
