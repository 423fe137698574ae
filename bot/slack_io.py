"""Small Slack Web API helpers shared by the workflow and the poller (slack_sdk only, no Bolt)."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)


def tell_user(slack: WebClient, *, channel_id: str, user_id: str, text: str,
              response_url: str | None = None, blocks: list[dict] | None = None) -> None:
    """Show ``text`` (and ``blocks``, when given) to one person: through the command's ``response_url`` when there
    is one, else an ephemeral message in the channel, else a DM (the bot may not be in the channel)."""
    if response_url:
        try:
            response = WebhookClient(response_url, timeout=10).send(
                text=text, blocks=blocks, response_type="ephemeral", replace_original=False
            )
            if response.status_code == 200:
                return
            log.warning("response_url answered HTTP %s", response.status_code)
        except OSError as error:
            log.warning("response_url failed: %s", error)
    try:
        slack.chat_postEphemeral(channel=channel_id, user=user_id, text=text, blocks=blocks)
        return
    except (SlackApiError, OSError) as error:
        log.info("chat.postEphemeral failed (%s); sending a DM", slack_error(error))
    try:
        slack.chat_postMessage(channel=user_id, text=text, blocks=blocks)
    except (SlackApiError, OSError) as error:
        log.error("could not reach %s at all: %s", user_id, slack_error(error))


def slack_error(error: Exception) -> str:
    """Slack's error code, or the kind of network failure (after slack_sdk's own retries gave up)."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error"))
    return type(error).__name__


def permalink(slack: WebClient, channel_id: str, ts: str | None) -> str:
    """A link to a message for mrkdwn, or a channel mention when Slack can't give one."""
    if ts:
        try:
            link = slack.chat_getPermalink(channel=channel_id, message_ts=ts).get("permalink")
            if link:
                return f"<{link}|the thread>"
        except (SlackApiError, OSError) as error:
            log.info("chat.getPermalink failed: %s", slack_error(error))
    return f"the thread in <#{channel_id}>"
