"""Opening a modal with a fresh ``trigger_id``: one try (a used trigger can't be sent again), and the person told
when it did not open or Slack's answer was lost."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.web import tell_user
from bot.ui.sentences import window_not_opened_text


def open_window(
    slack: WebClient,
    view: dict,
    *,
    trigger_id: str,
    channel_id: str,
    user_id: str,
    response_url: str | None = None,
    push: bool = False,
) -> dict[str, Any] | None:
    """``views.open`` (``views.push`` over an open modal with ``push``) of ``view``: the opened view, or None when
    it did not open or the answer was lost (the person was told)."""
    try:
        opened = (slack.views_push if push else slack.views_open)(trigger_id=trigger_id, view=view)
    except (SlackApiError, OSError) as error:
        tell_user(
            slack,
            channel_id=channel_id,
            user_id=user_id,
            text=window_not_opened_text(error),
            response_url=response_url,
        )
        return None
    return opened["view"]
