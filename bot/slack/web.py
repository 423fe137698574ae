"""Small Slack Web API helpers shared by the workflow and the poller (slack_sdk only, no Bolt)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

log = logging.getLogger(__name__)


def tell_user(
    slack: WebClient,
    *,
    channel_id: str,
    user_id: str,
    text: str,
    response_url: str | None = None,
    blocks: list[dict] | None = None,
) -> None:
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
    """Slack's error code (``HTTP <status>`` when Slack sent none), or the kind of network failure (after
    slack_sdk's own retries gave up). Never the exception's text: it may carry a ``response_url``."""
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or f"HTTP {error.response.status_code}")
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


ROOT_EVENT = "migrate_bot_root"  # metadata of a run's root message: {run_id}
#: Longer than any one post can take (timeouts and rate-limit waits, :mod:`bot.slack.retry`): a root post in flight
#: for longer lost its answer (the process died meanwhile).
ROOT_POST_DEADLINE = timedelta(minutes=5)


class Unanswered(Exception):
    """Slack did not say whether a post happened (no answer, a 5xx): look before posting again."""


def answer_lost(error: Exception) -> bool:
    """Whether a failed Slack call may still have taken effect: no answer at all, or a server error."""
    if isinstance(error, SlackApiError):
        status = getattr(error.response, "status_code", 200) or 200
        return status >= 500
    return isinstance(error, OSError)


def post_root(slack: WebClient, *, channel_id: str, run_id: int, text: str, blocks: list[dict]) -> str:
    """Post a run's root message tagged with the run id (so a lost answer can be found again); its ts.

    Raises :class:`Unanswered` when Slack's answer was lost, ``SlackApiError`` when Slack refused it."""
    try:
        response = slack.chat_postMessage(
            channel=channel_id,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            unfurl_media=False,
            metadata={"event_type": ROOT_EVENT, "event_payload": {"run_id": run_id}},
        )
    except (SlackApiError, OSError) as error:
        if answer_lost(error):
            raise Unanswered(slack_error(error)) from error
        raise
    return response["ts"]


def find_root(slack: WebClient, *, channel_id: str, run_id: int, since: float) -> str | None:
    """The ts of the run's root message posted after ``since`` (epoch seconds), None when it is not there.

    Raises :class:`Unanswered` when Slack can't tell now. Needs ``channels:history`` / ``groups:history``."""
    return find_tagged(
        lambda cursor: slack.conversations_history(
            channel=channel_id, oldest=f"{since:.6f}", cursor=cursor, include_all_metadata=True, limit=200
        ),
        event_type=ROOT_EVENT,
        run_id=run_id,
        where=f"<#{channel_id}>",
    )


def find_tagged(
    fetch: Callable[[str | None], Any], *, event_type: str, run_id: int, key: str | None = None, where: str
) -> str | None:
    """Page through ``fetch(cursor)`` (conversations.history or .replies) for the bot's message whose metadata
    names this run (and ``key``); its ts, or None. Raises :class:`Unanswered` when Slack can't tell now; when it
    can't be read at all (no scope, not in the channel) it assumes the message was not posted: a possible
    duplicate beats never finishing."""
    cursor = None
    while True:
        try:
            response = fetch(cursor)
        except (SlackApiError, OSError) as error:
            if answer_lost(error) or slack_error(error) == "ratelimited":
                raise Unanswered(slack_error(error)) from error
            log.error(
                "can't read %s (%s): assuming the message of run %s was not posted", where, slack_error(error), run_id
            )
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == event_type
                and payload.get("run_id") == run_id
                and (key is None or payload.get("key") == key)
            ):
                return message.get("ts") or ""
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not response.get("has_more") or not cursor:
            return None
