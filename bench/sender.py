"""Signed ``/migrate`` commands, sent the way Slack sends them, with as little client work as possible in the timing.

:class:`bot.rehearsal.slack_standin.SlackSender` builds the same request (same form fields, same ``v0`` signature from
:func:`bot.rehearsal.slack_standin.sign`), but on httpx, whose per-request CPU cost is several times that of
``http.client``. With 20 sender threads in one process on a 2-CPU machine that cost, and the GIL it holds,
showed up as tens of milliseconds of "ack latency" against a server that does nothing (see bench/README.md,
"harness floor"). Here everything that is not the request itself happens before ``sent_at``: the trigger id
and response URL are issued by the stand-in (one control call), the body is built and signed, and the timing
covers exactly: write the request, read the whole answer.
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from bot.rehearsal.slack_standin import sign


@dataclass
class Sent:
    job_id: str
    user_id: str
    trigger_id: str
    sent_at: float
    acked_at: float
    status: int
    body: bytes

    @property
    def ack_seconds(self) -> float:
        return self.acked_at - self.sent_at


class _Connection:
    """One keep-alive HTTP/1.1 connection (reopened when the server closed it)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.path = parts.path or "/"
        self._conn = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def post(self, body: bytes, headers: dict[str, str], path: str | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self._conn.request("POST", path or self.path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._conn.close()


class CommandSender:
    """Plays Slack for slash commands: ``CommandSender(bot_url, signing_secret, world_urls)``; one per thread."""

    def __init__(
        self,
        bot_url: str,
        signing_secret: str,
        world_urls: dict[str, str],
        *,
        channel_id: str,
        channel_name: str = "migrations-bench",
    ) -> None:
        url = bot_url.rstrip("/")
        self._bot = _Connection(url if url.endswith("/slack/events") else f"{url}/slack/events")
        self._control = _Connection(world_urls["control_url"] + "/_bench/slash")
        self.secret = signing_secret
        self.team_id = world_urls["team_id"]
        self.team_domain = world_urls["team_domain"]
        self.app_id = world_urls["app_id"]
        self.channel_id = channel_id
        self.channel_name = channel_name

    def close(self) -> None:
        self._bot.close()
        self._control.close()

    def __enter__(self) -> CommandSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def slash_command(self, text: str, *, user_id: str, user_name: str = "", command: str = "/migrate") -> Sent:
        status, raw = self._control.post(
            json.dumps({"user_id": user_id, "channel_id": self.channel_id}).encode(),
            {"Content-Type": "application/json"},
        )
        if status != 200:
            raise RuntimeError(f"the stand-in did not issue a trigger: {status} {raw[:200]!r}")
        issued = json.loads(raw)
        fields = {
            "token": "standin-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": self.channel_id,
            "channel_name": self.channel_name,
            "user_id": user_id,
            "user_name": user_name or user_id,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": issued["response_url"],
            "trigger_id": issued["trigger_id"],
        }
        body = urlencode(fields)
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(self.secret, stamp, body),
        }
        payload = body.encode()
        sent_at = time.time()
        status, answer = self._bot.post(payload, headers)
        acked_at = time.time()
        return Sent(text, user_id, issued["trigger_id"], sent_at, acked_at, status, answer)
