"""Read-only answers to ``/migrate status <jobId>`` and ``/migrate list``.

Called in the bot's worker pool after the listener acked (Graph and Slack calls are slow); the answer goes to
the person only, through the command's ``response_url`` (:func:`bot.slack.web.tell_user`). Who may read
(migrators and approvers) is decided before, by :class:`bot.workflow.access.Checkpoint`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk import WebClient

from bot.errors import CredentialError, GraphError, GraphNotFound
from bot.graph.client import GraphClient
from bot.graph.eligibility import eligibility_for
from bot.slack.web import permalink, tell_user
from bot.store import Run, Store, utcnow
from bot.ui import reports as report_blocks
from bot.ui.sentences import refusal_text
from bot.ui.thread import summarize_tasks
from bot.workflow.flow import SlashRequest, command_for
from bot.workflow.names import Names, name_failed_users

log = logging.getLogger(__name__)


class Reports:
    """``status`` and ``list``: what Graph says about a job now, and what the bot tracks."""

    def __init__(
        self,
        *,
        graph: GraphClient,
        slack: WebClient,
        store: Store,
        clock: Callable[[], datetime] = utcnow,
        list_limit: int = report_blocks.LIST_LIMIT,
        listed_days: int = report_blocks.LISTED_DAYS,
        directory: Names | None = None,
    ) -> None:
        self.directory = directory
        self.graph = graph
        self.slack = slack
        self.store = store
        self.clock = clock
        self.list_limit = list_limit
        self.listed_days = listed_days

    # /migrate status <jobId>
    def status(self, request: SlashRequest, job_id: str) -> None:
        try:
            job = self.graph.get_job(job_id)
        except (GraphError, CredentialError) as error:
            log.info("status of %s: get job failed: %s", job_id, error)
            self._tell(request, refusal_text(error, "read the job"))
            return
        summary, tasks_error = None, None
        try:
            summary = summarize_tasks(self.graph.list_tasks(job_id))
            summary = name_failed_users(summary, self.directory, report_blocks.STATUS_FAILED_USERS_SHOWN)
        except GraphNotFound:
            tasks_error = "the job vanished while its users were read"
        except (GraphError, CredentialError) as error:
            log.info("status of %s: list users failed: %s", job_id, error)
            tasks_error = str(error)
        run = self._followed_run(job_id)
        where = permalink(self.slack, run.channel_id, run.root_ts) if run is not None else None
        now = self.clock()
        steps = [
            (command_for(action, job.id), eligibility_for(action, job, now))
            for action in ("migrate", "validate", "cancel")
        ]
        text, blocks = report_blocks.job_status(
            job=job, summary=summary, tasks_error=tasks_error, run=run, where=where, now=now, next_steps=steps
        )
        self._tell(request, text, blocks)

    def _followed_run(self, job_id: str) -> Run | None:
        """The run whose thread belongs to the job: an active one first, else the latest with a message."""
        runs = [run for run in self.store.runs_for_job(job_id) if run.root_ts]
        active = [run for run in runs if run.is_active and run.parent_run_id is None]
        return (active or runs or [None])[0]

    # /migrate list
    def list_runs(self, request: SlashRequest) -> None:
        """Waiting, running, and ended in the last days; one ``chat.getPermalink`` per listed run (capped)."""
        now = self.clock()
        runs, total = self.store.listed_runs(now - timedelta(days=self.listed_days), self.list_limit)
        listed = [(run, permalink(self.slack, run.channel_id, run.root_ts)) for run in runs]
        text, blocks = report_blocks.run_list(runs=listed, total=total, now=now, days=self.listed_days)
        self._tell(request, text, blocks)

    def _tell(self, request: SlashRequest, text: str, blocks: list[dict] | None = None) -> None:
        tell_user(
            self.slack,
            channel_id=request.channel_id,
            user_id=request.user_id,
            text=text,
            blocks=blocks,
            response_url=request.response_url,
        )
