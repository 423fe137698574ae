"""``/migrate users <jobId> [failed|all|<user>]``: the per-user × workload view of a job, in a modal.

The modal opens at once ("Loading…") with the command's fresh trigger_id; the job and its users are read from
Graph in the worker pool and each page (Previous / Next) is a ``views.update``. Who may look (migrators and
approvers) is decided by the checkpoint before any of this runs (:class:`bot.workflow.access.Checkpoint`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import CredentialError, GraphError
from bot.graph import tasks as task_rules
from bot.graph.client import GraphClient
from bot.graph.models import MigrationTask
from bot.store import utcnow
from bot.ui import users as ui
from bot.ui.sentences import refusal_text
from bot.workflow.flow import SlashRequest
from bot.workflow.windows import open_window

log = logging.getLogger(__name__)

TASKS_TTL = 30.0


class UsersView:
    """Opens and pages the users modal."""

    def __init__(
        self,
        *,
        graph: GraphClient,
        slack: WebClient,
        work: Executor,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.graph = graph
        self.slack = slack
        self.work = work
        self.clock = clock
        self._cache: TTLCache[str, list[MigrationTask]] = TTLCache(maxsize=32, ttl=TASKS_TTL)
        self._lock = threading.Lock()

    def open(self, request: SlashRequest, job_id: str, which: str) -> None:
        """Right after the ack (prompt pool): open the loading modal, fill it in the worker pool."""
        ctx = ui.UsersContext(request.channel_id, job_id, request.user_id, request.team_id, which)
        view = open_window(
            self.slack,
            ui.loading(ctx),
            trigger_id=request.trigger_id,
            channel_id=request.channel_id,
            user_id=request.user_id,
            response_url=request.response_url,
        )
        if view is None:
            return
        self.work.submit(self.show, ctx, view["id"], view.get("hash"))

    def _tasks(self, job_id: str, *, fresh: bool) -> list[MigrationTask]:
        """The job's users: read from Graph when the view opens, then reused while paging for ``TASKS_TTL`` seconds
        (a batch of 2,000 users is 100 Graph pages; Previous / Next should not read them all again)."""
        with self._lock:
            cached = None if fresh else self._cache.get(job_id)
        if cached is not None:
            return cached
        tasks = self.graph.list_tasks(job_id)
        with self._lock:
            self._cache[job_id] = tasks
        return tasks

    def show(self, ctx: ui.UsersContext, view_id: str, view_hash: str | None) -> None:
        """Read the job and its users, then update the modal with the page ``ctx.page`` (also Previous / Next)."""
        try:
            job = self.graph.get_job(ctx.job_id)
            tasks = self._tasks(ctx.job_id, fresh=ctx.page == 0)
        except (GraphError, CredentialError) as error:
            log.info("users of %s: %s", ctx.job_id, error)
            view = ui.message_view(ctx, refusal_text(error, "read the job's users"))
        else:
            now = self.clock()
            shown = task_rules.select(tasks, ctx.which)
            removable = {task.id for task in shown if task_rules.removal_eligibility(job, task, now).allowed}
            view = ui.users_page(
                ctx,
                job,
                shown,
                total=len(tasks),
                failed=sum(1 for task in tasks if task_rules.has_failed(task)),
                removable=removable,
                now=now,
            )
        try:
            self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as error:
            log.info("views.update %s (users) skipped: %s", view_id, error.response.get("error"))
