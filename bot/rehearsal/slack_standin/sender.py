"""Send signed requests shaped like Slack's to a bot's HTTP endpoint (``<bot_url>/slack/events``).

Slash commands are form fields; interactive payloads (``block_actions``, ``view_submission``,
``view_closed``) are one form field ``payload=<json>``. Every request is signed like Slack signs
it: ``X-Slack-Signature: v0=HMAC_SHA256(secret, "v0:{timestamp}:{raw body}")`` plus
``X-Slack-Request-Timestamp``. Trigger ids and response URLs come from the :class:`SlackStandIn`,
so whatever the bot does with them is checked there, and acknowledgements with effects (a
view_submission ``response_action``, a slash-command reply) are applied to the stand-in.

An acknowledgement that arrives after ``standin.ack_timeout`` (3 s, reference section 0 item 1) is what Slack
ignores: the user sees ``operation_timeout``, so its effects are dropped here and the stand-in records a violation.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.rehearsal.slack_standin.api import SlackStandIn

__all__ = ["SentRequest", "SlackSender", "sign"]

STALE_SECONDS = 6 * 60  # Slack (and Bolt) reject timestamps more than five minutes away


def sign(signing_secret: str, timestamp: str | int, body: str) -> str:
    """``v0=<hex>`` for ``body`` sent at ``timestamp``."""
    mac = hmac.new(signing_secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256)
    return "v0=" + mac.hexdigest()


@dataclass
class SentRequest:
    """One delivered request and what came back."""

    kind: str
    body: str
    payload: dict
    response: httpx.Response
    sent_at: float
    acked_at: float
    trigger_id: str | None = None
    response_url: str | None = None
    ack_effect: dict = field(default_factory=dict)
    late: bool = False  # acked after Slack's deadline: Slack showed operation_timeout and ignored the ack

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def ack_seconds(self) -> float:
        return self.acked_at - self.sent_at

    @property
    def ack(self) -> Any:
        """The acknowledgement body: parsed JSON, the raw text, or ``None`` when empty."""
        text = self.response.text
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text


class SlackSender:
    """Plays Slack's part towards the bot: ``SlackSender(bot_url, signing_secret, standin)``.

    ``bot_url`` is the bot's server root (``/slack/events`` is appended unless already there).
    Every method accepts ``bad_signature=True`` (a wrong HMAC) and ``stale=True`` (a correctly
    signed timestamp six minutes old) for negative tests.
    """

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        standin: SlackStandIn,
        *,
        api_app_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        url = bot_url.rstrip("/")
        self.url = url if url.endswith("/slack/events") else f"{url}/slack/events"
        self.signing_secret = signing_secret
        self.standin = standin
        self.api_app_id = api_app_id or standin.app_id
        self._http = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SlackSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- transport

    def post(
        self,
        body: str,
        *,
        bad_signature: bool = False,
        stale: bool = False,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[httpx.Response, float, float]:
        """POST a raw body with Slack's headers; returns (response, sent_at, acked_at)."""
        stamp = str(int(time.time()) - (STALE_SECONDS if stale else 0))
        signature = sign(self.signing_secret, stamp, body)
        if bad_signature:
            signature = sign(self.signing_secret + "-wrong", stamp, body)
        headers = {
            "Content-Type": content_type,
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }
        sent_at = time.time()
        response = self._http.post(self.url, content=body.encode(), headers=headers)
        acked_at = time.time()
        if acked_at - sent_at > self.standin.ack_timeout:
            self.standin.record_violation(
                f"late ack: {acked_at - sent_at:.2f} s for {body[:80]!r} (Slack waits {self.standin.ack_timeout:g} s, "
                "shows operation_timeout and ignores the answer)"
            )
        return response, sent_at, acked_at

    def _team(self, team_id: str | None) -> dict:
        return {"id": team_id or self.standin.team_id, "domain": self.standin.team_domain}

    def _user(self, user_id: str, team_id: str | None) -> dict:
        user = self.standin.users.get(user_id)
        name = user.name if user else user_id
        return {"id": user_id, "username": name, "name": name, "team_id": team_id or self.standin.team_id}

    def _send_payload(self, kind: str, payload: dict, **opts: Any) -> tuple[httpx.Response, float, float, str]:
        body = urlencode({"payload": json.dumps(payload)})
        response, sent_at, acked_at = self.post(body, **opts)
        return response, sent_at, acked_at, body

    def payload(self, payload: dict, *, bad_signature: bool = False, stale: bool = False) -> SentRequest:
        """POST any interaction payload, signed, as Slack would: for payloads no person could produce through
        the stand-in's own helpers (a forged run id, channel or workspace; a payload missing fields)."""
        kind = str(payload.get("type") or "")
        response, sent_at, acked_at, body = self._send_payload(kind, payload, bad_signature=bad_signature, stale=stale)
        return SentRequest(kind, body, payload, response, sent_at, acked_at, payload.get("trigger_id"))

    # ---------------------------------------------------------------- slash command

    def slash_command_fields(
        self, text: str, *, user_id: str, channel_id: str, command: str = "/migrate", team_id: str | None = None
    ) -> dict[str, str]:
        """The fields Slack sends for ``/migrate <text>`` (form-encoded over HTTP, a JSON payload over a socket),
        with a fresh trigger_id and response_url from the stand-in."""
        standin = self.standin
        channel = standin.channels.get(channel_id)
        user = standin.users.get(user_id)
        return {
            "token": "standin-verification-token",
            "team_id": team_id or standin.team_id,
            "team_domain": standin.team_domain,
            "channel_id": channel_id,
            "channel_name": channel.name if channel else "privategroup",
            "user_id": user_id,
            "user_name": user.name if user else user_id,
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": standin.issue_response_url(channel=channel_id, user=user_id),
            "trigger_id": standin.issue_trigger(user_id),
        }

    def slash_command(
        self,
        text: str,
        *,
        user_id: str,
        channel_id: str,
        command: str = "/migrate",
        team_id: str | None = None,
        bad_signature: bool = False,
        stale: bool = False,
    ) -> SentRequest:
        """``/migrate <text>`` typed by ``user_id`` in ``channel_id``."""
        standin = self.standin
        fields = self.slash_command_fields(
            text, user_id=user_id, channel_id=channel_id, command=command, team_id=team_id
        )
        trigger_id, response_url = fields["trigger_id"], fields["response_url"]
        body = urlencode(fields)
        response, sent_at, acked_at = self.post(body, bad_signature=bad_signature, stale=stale)
        sent = SentRequest("slash_command", body, fields, response, sent_at, acked_at, trigger_id, response_url)
        sent.late = acked_at - sent_at > standin.ack_timeout
        ack = sent.ack if response.status_code == 200 and not sent.late else None
        if isinstance(ack, dict) and (ack.get("text") or ack.get("blocks")):
            standin.deliver_ack_message(response_url, ack, user=user_id)
            sent.ack_effect = {"action": "message"}
        elif isinstance(ack, str) and ack.strip():
            standin.deliver_ack_message(response_url, {"text": ack}, user=user_id)
            sent.ack_effect = {"action": "message"}
        return sent

    # ---------------------------------------------------------------- modals

    def view_submission(
        self,
        view_id: str,
        *,
        user_id: str,
        values: dict[str, dict[str, dict]] | None = None,
        team_id: str | None = None,
        bad_signature: bool = False,
        stale: bool = False,
    ) -> SentRequest:
        """The user presses the submit button of the open view ``view_id``.

        ``values`` is ``{block_id: {action_id: {"type": ..., "value": ...}}}`` as Slack sends it.
        The ack is applied: empty closes the view, ``response_action`` updates/pushes/clears it or
        leaves it open with ``errors`` (see ``SentRequest.ack_effect``).
        """
        standin = self.standin
        view = standin.view(view_id)
        if view is None or not standin.view_is_open(view_id):
            raise ValueError(f"view {view_id} is not open; nobody can submit it")
        if not view.get("submit"):
            raise ValueError(f"view {view_id} has no submit button")
        view["state"] = {"values": values or {}}
        trigger_id = standin.issue_trigger(user_id, view_id=view_id)
        payload = {
            "type": "view_submission",
            "team": self._team(team_id),
            "user": self._user(user_id, team_id),
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "trigger_id": trigger_id,
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": None,
        }
        response, sent_at, acked_at, body = self._send_payload(
            "view_submission", payload, bad_signature=bad_signature, stale=stale
        )
        sent = SentRequest("view_submission", body, payload, response, sent_at, acked_at, trigger_id)
        sent.late = acked_at - sent_at > standin.ack_timeout
        if sent.late:
            sent.ack_effect = {"action": "operation_timeout", "errors": {}, "view_id": view_id}
        elif response.status_code == 200:
            ack = sent.ack
            sent.ack_effect = standin.apply_view_submission_ack(view_id, ack if isinstance(ack, dict) else None)
        return sent

    def view_closed(
        self,
        view_id: str,
        user_id: str,
        *,
        is_cleared: bool = False,
        team_id: str | None = None,
        bad_signature: bool = False,
        stale: bool = False,
    ) -> SentRequest | None:
        """The user closes the view. Slack only notifies the app when the view set
        ``notify_on_close``; otherwise the view is closed and ``None`` is returned."""
        standin = self.standin
        view = standin.view(view_id)
        if view is None or not standin.view_is_open(view_id):
            raise ValueError(f"view {view_id} is not open")
        standin.close_view(view_id, clear=is_cleared)
        if not view.get("notify_on_close"):
            return None
        payload = {
            "type": "view_closed",
            "team": self._team(team_id),
            "user": self._user(user_id, team_id),
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "view": view,
            "is_cleared": is_cleared,
            "is_enterprise_install": False,
            "enterprise": None,
        }
        response, sent_at, acked_at, body = self._send_payload(
            "view_closed", payload, bad_signature=bad_signature, stale=stale
        )
        return SentRequest("view_closed", body, payload, response, sent_at, acked_at)

    # ---------------------------------------------------------------- buttons

    def block_action(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str,
        value: str | None = None,
        block_id: str | None = None,
        team_id: str | None = None,
        bad_signature: bool = False,
        stale: bool = False,
    ) -> SentRequest:
        """``user_id`` clicks the element ``action_id`` (optionally in ``block_id``) of a stored message.

        Raises ``ValueError`` when the message or element does not exist (nobody could click it).
        """
        standin = self.standin
        message = standin.message(channel_id, message_ts)
        if message is None or message.deleted:
            raise ValueError(f"no message {message_ts} in {channel_id}")
        found = _find_element(message.blocks, action_id, block_id)
        if found is None:
            raise ValueError(
                f"message {message_ts} has no element {action_id!r}" + (f" in block {block_id!r}" if block_id else "")
            )
        found_block_id, element = found
        trigger_id = standin.issue_trigger(user_id)
        response_url = standin.issue_response_url(channel=channel_id, user=user_id, message_ts=message_ts)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": found_block_id,
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = element["text"]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if element.get("style"):
            action["style"] = element["style"]
        channel = standin.channels.get(channel_id)
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        if message.is_reply:
            container["thread_ts"] = message.thread_ts
        payload = {
            "type": "block_actions",
            "user": self._user(user_id, team_id),
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "container": container,
            "trigger_id": trigger_id,
            "team": self._team(team_id),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel.name if channel else "privategroup"},
            "message": message.to_slack(),
            "state": {"values": {}},
            "response_url": response_url,
            "actions": [action],
        }
        response, sent_at, acked_at, body = self._send_payload(
            "block_actions", payload, bad_signature=bad_signature, stale=stale
        )
        return SentRequest("block_actions", body, payload, response, sent_at, acked_at, trigger_id, response_url)

    def view_block_action(
        self,
        view_id: str,
        action_id: str,
        *,
        user_id: str,
        value: str | None = None,
        block_id: str | None = None,
        team_id: str | None = None,
    ) -> SentRequest:
        """``user_id`` clicks the element ``action_id`` inside the open modal ``view_id`` (container type ``view``;
        the payload carries the view with its ``private_metadata`` and ``hash`` instead of a channel and message).

        Raises ``ValueError`` when the view is not open or has no such element.
        """
        standin = self.standin
        view = standin.view(view_id)
        if view is None or not standin.view_is_open(view_id):
            raise ValueError(f"view {view_id} is not open; nobody can click in it")
        found = _find_element(view.get("blocks") or [], action_id, block_id)
        if found is None:
            raise ValueError(f"view {view_id} has no element {action_id!r}")
        found_block_id, element = found
        trigger_id = standin.issue_trigger(user_id, view_id=view_id)
        action: dict[str, Any] = {
            "action_id": action_id,
            "block_id": found_block_id,
            "type": element.get("type", "button"),
            "action_ts": f"{time.time():.6f}",
        }
        if "text" in element:
            action["text"] = element["text"]
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        payload = {
            "type": "block_actions",
            "user": self._user(user_id, team_id),
            "api_app_id": self.api_app_id,
            "token": "standin-verification-token",
            "container": {"type": "view", "view_id": view_id},
            "trigger_id": trigger_id,
            "team": self._team(team_id),
            "enterprise": None,
            "is_enterprise_install": False,
            "view": view,
            "state": view.get("state") or {"values": {}},
            "actions": [action],
        }
        response, sent_at, acked_at, body = self._send_payload("block_actions", payload)
        return SentRequest("block_actions", body, payload, response, sent_at, acked_at, trigger_id)

    # ---------------------------------------------------------------- events

    def app_home_opened(self, user_id: str, *, tab: str = "home", team_id: str | None = None) -> SentRequest:
        """``user_id`` opens the app's Home tab: an Events API ``event_callback`` (JSON body) with the event
        ``app_home_opened`` (and the home view, when one was published for the user)."""
        standin = self.standin
        team = team_id or standin.team_id
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D0{user_id[-6:]}",
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        }
        home = standin.home(user_id)
        if home is not None:
            event["view"] = home
        payload = {
            "token": "standin-verification-token",
            "team_id": team,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev0{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": team, "user_id": standin.bot_user_id, "is_bot": True, "is_enterprise_install": False}
            ],
            "is_ext_shared_channel": False,
        }
        body = json.dumps(payload)
        response, sent_at, acked_at = self.post(body, content_type="application/json")
        return SentRequest("event_callback", body, payload, response, sent_at, acked_at)


def _find_element(blocks: list, action_id: str, block_id: str | None) -> tuple[str, dict] | None:
    for block in blocks or []:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if block.get("accessory"):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id") or "", element
    return None
