"""A run's root message, posted at most once by whoever gets there first (the flow as the run starts, or the
poller when that post failed or its answer was lost)."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.web import Unanswered, find_root, post_root, slack_error
from bot.store import Run, Store


def post_root_once(
    slack: WebClient, store: Store, run: Run, text: str, blocks: list[dict], **posted: Any
) -> tuple[Run, str | None, bool]:
    """Post the run's root message unless an earlier post whose answer was lost is found in the channel.

    The intent (``root_pending``) is recorded before posting. Returns the run (with ``root_ts`` and ``posted``
    fields once posted or found), Slack's error when it is not, and whether that error means the answer was lost
    (the message may be there: ``root_pending`` stays set and the next look searches before posting)."""
    if run.root_pending:
        try:
            found = find_root(slack, channel_id=run.channel_id, run_id=run.id, since=run.created_at.timestamp() - 1)
        except Unanswered as error:
            return run, str(error), True
        if found:
            return store.update_run(run.id, root_ts=found, root_pending=False), None, False
    else:
        run = store.update_run(run.id, root_pending=True)
    try:
        ts = post_root(slack, channel_id=run.channel_id, run_id=run.id, text=text, blocks=blocks)
    except Unanswered as error:
        return run, str(error), True
    except (SlackApiError, OSError) as error:  # refused: nothing was posted
        return store.update_run(run.id, root_pending=False), slack_error(error), False
    return store.update_run(run.id, root_ts=ts, root_pending=False, **posted), None, False
