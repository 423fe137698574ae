"""``/migrate whoami``: which admin account and tenant the bot acts as."""

from __future__ import annotations

from datetime import datetime

from slack_sdk import WebClient

from bot.credential.base import describe_time
from bot.credential.health import CredentialHealth
from bot.slack.mrkdwn import escape
from bot.slack.web import tell_user
from bot.store import utcnow


class Whoami:
    """``/migrate whoami``: people who may migrate see which admin account and tenant the bot acts as."""

    def __init__(self, *, health: CredentialHealth, slack: WebClient, graph_base_url: str) -> None:
        self.health = health
        self.slack = slack
        self.graph_base_url = graph_base_url

    def answer(self, *, user_id: str, channel_id: str, response_url: str | None = None) -> None:
        """Reply to ``user_id`` only (ephemeral), once the checkpoint allowed it (people who may migrate)."""
        text = whoami_text(self.health, graph_base_url=self.graph_base_url)
        tell_user(self.slack, channel_id=channel_id, user_id=user_id, text=text, response_url=response_url)


def whoami_text(health: CredentialHealth, *, graph_base_url: str, now: datetime | None = None) -> str:
    """Which admin account and tenant the bot acts as (mrkdwn, ephemeral; no secret)."""
    now = now or utcnow()
    if health.is_static:
        lines = [
            ":robot_face: I use a static token for the Graph simulator (`GRAPH_STATIC_TOKEN`, "
            f"{escape(graph_base_url)}): no admin account, no tenant."
        ]
    else:
        status = health.status()
        if status is None:
            lines = [":robot_face: I use a token source that reports no account."]
        elif status.mode == "application":
            lines = [
                f":robot_face: I act as the app itself (app-only) in tenant `{escape(status.tenant_id)}`.",
                f"App (client) id `{escape(status.client_id)}`, credential: {escape(status.credential_kind or 'none')}.",
            ]
        else:
            account = f"`{escape(status.username)}`" if status.username else "*no admin signed in*"
            lines = [
                f":robot_face: I act as {account} in tenant `{escape(status.tenant_id)}` (delegated).",
                f"Signed in: {describe_time(status.login_at, now)} · last token refresh: {describe_time(status.last_refresh_at, now)}.",
            ]
        if status is not None and status.problem:
            lines.append(f":warning: {escape(status.problem)}")
    episode = health.episode
    if episode is not None:
        lines.append(
            f":closed_lock_with_key: The credential has been failing since {describe_time(episode.since, now)} "
            f"(`{escape(episode.code)}`): {escape(episode.message)}\n*Next step:* an operator runs "
            "`migrate-bot login` on the bot's host."
        )
    return "\n".join(lines)
