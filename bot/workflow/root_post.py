"""A run's root message, posted at most once by whoever gets there first (the flow as the run starts, or the
poller when that post failed or its answer was lost)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.web import ROOT_POST_DEADLINE, Unanswered, find_root, post_root, slack_error
from bot.store import Run, Store

#: Slack's error slot when another post of this root is still waiting for its answer.
IN_FLIGHT = "root_in_flight"


def post_root_once(
    slack: WebClient, store: Store, run: Run, text: str, blocks: list[dict], *, now: datetime, **posted: Any
) -> tuple[Run, str | None, bool]:
    """Post the run's root message unless another post of it is in flight or an earlier post whose answer was lost
    is found in the channel.

    The intent (``root_pending``) and the moment of sending (``root_posting_at``) are claimed in one atomic update
    before posting (:meth:`bot.store.Store.claim_root_post`), so two processes never both post it, and a post still
    waiting for Slack's answer (a 429, a slow Slack) is told apart from one whose answer was lost: within
    :data:`ROOT_POST_DEADLINE` of sending, others wait for its answer. Returns the run (with ``root_ts`` and
    ``posted`` fields once posted or found), Slack's error when it is not (:data:`IN_FLIGHT` while another post
    waits), and whether that error means the answer was lost (the message may be there: ``root_pending`` stays
    set and the next look searches before posting)."""
    if run.root_pending and run.root_posting_at is not None and now - run.root_posting_at < ROOT_POST_DEADLINE:
        return run, IN_FLIGHT, True
    if run.root_pending:
        try:
            found = find_root(slack, channel_id=run.channel_id, run_id=run.id, since=run.created_at.timestamp() - 1)
        except Unanswered as error:
            return run, str(error), True
        if found:
            return store.update_run(run.id, root_ts=found, root_pending=False, root_posting_at=None), None, False
    claimed = store.claim_root_post(run.id, now=now, stale_before=now - ROOT_POST_DEADLINE)
    if claimed is None:  # posted meanwhile, or another process's post of it is waiting for its answer
        return store.get_run(run.id) or run, IN_FLIGHT, True
    run = claimed
    try:
        ts = post_root(slack, channel_id=run.channel_id, run_id=run.id, text=text, blocks=blocks)
    except Unanswered as error:  # lost: the next look searches the channel at once
        return store.update_run(run.id, root_posting_at=None), str(error), True
    except (SlackApiError, OSError) as error:  # refused: nothing was posted
        return store.update_run(run.id, root_pending=False, root_posting_at=None), slack_error(error), False
    return store.update_run(run.id, root_ts=ts, root_pending=False, root_posting_at=None, **posted), None, False
