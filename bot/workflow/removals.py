"""Remove one user from a batch: ``/migrate remove <jobId> <user>`` and the Remove button of ``/migrate users``.

A form (modal) shows the user and Graph's verdict and asks for a reason; the change then follows the cancel's
approval policy (:class:`bot.workflow.changes.ChangeDesk`) and is one ``POST .../users/{taskId}/cancel``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.change_store import ChangeRequest
from bot.errors import CredentialError, GraphConflict, GraphError, GraphNotFound, GraphUnavailable
from bot.graph import tasks as task_rules
from bot.graph.client import GraphClient
from bot.graph.conflicts import BatchConflicts
from bot.slack.mrkdwn import escape, safe
from bot.slack.web import tell_user
from bot.store import utcnow
from bot.ui import changes as ui
from bot.ui.sentences import refusal_text
from bot.workflow.changes import ChangeDesk, Described, OutcomeUnknown, Refused
from bot.workflow.policy import Policy
from bot.workflow.windows import open_window

log = logging.getLogger(__name__)


class Removals:
    """The remove-a-user form and the :class:`~bot.workflow.changes.ChangeKind` ``remove``."""

    kind = "remove"

    def __init__(
        self,
        *,
        graph: GraphClient,
        slack: WebClient,
        policy: Policy,
        desk: ChangeDesk,
        work: Executor,
        clock: Callable[[], datetime] = utcnow,
        conflicts: BatchConflicts | None = None,
    ) -> None:
        self.conflicts = conflicts
        self.graph = graph
        self.slack = slack
        self.policy = policy
        self.desk = desk
        self.work = work
        self.clock = clock
        desk.kinds[self.kind] = self

    # The form
    def open_form(
        self, meta: ui.ChangeForm, trigger_id: str, *, push: bool = False, response_url: str | None = None
    ) -> None:
        """Right after the ack and the checkpoint (prompt pool): open (or push over the users view) the loading
        form, then fill it in the worker pool."""
        opened = open_window(
            self.slack,
            ui.remove_loading(meta),
            trigger_id=trigger_id,
            channel_id=meta.channel_id,
            user_id=meta.user_id,
            response_url=response_url,
            push=push,
        )
        if opened is not None:
            self.work.submit(self.fill_form, meta, opened["id"], opened.get("hash"))

    def fill_form(self, meta: ui.ChangeForm, view_id: str, view_hash: str | None) -> None:
        try:
            job = self.graph.get_job(meta.job_id)
            found = task_rules.select(self.graph.list_tasks(meta.job_id), meta.who)
        except (GraphError, CredentialError) as error:
            view = ui.remove_message(meta, refusal_text(error, "read the job's users"))
        else:
            if not found:
                view = ui.remove_message(
                    meta,
                    f":x: *No user `{safe(meta.who, 200)}` in this job.* Check the object id or UPN with `/migrate users {meta.job_id}`.",
                )
            else:
                task = found[0]
                meta = ui.ChangeForm(
                    meta.channel_id, meta.job_id, meta.user_id, meta.team_id, meta.who, task.id, task_rules.label(task)
                )
                eligibility = task_rules.removal_eligibility(job, task, self.clock())
                view = ui.remove_form(meta, job, task, eligibility, needs_approval=self.policy.require_approval)
        try:
            self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as error:
            log.info("views.update %s (remove form) skipped: %s", view_id, error.response.get("error"))

    def confirm(
        self, meta: ui.ChangeForm, user_id: str, reason: str, view_id: str | None = None
    ) -> ChangeRequest | None:
        """The form was submitted (by its owner, naming a user: the checkpoint and the listener saw to that): the
        change goes to the desk (approval or straight to Graph). The submission (``view_id``) is acted on once."""
        if not self.desk.claim(view_id, user_id, meta.channel_id):
            return None
        try:
            job_name = self.graph.get_job(meta.job_id).name
        except (GraphError, CredentialError) as error:
            tell_user(
                self.slack, channel_id=meta.channel_id, user_id=user_id, text=refusal_text(error, "request the removal")
            )
            return None
        return self.desk.submit(
            kind=self.kind,
            job_id=meta.job_id,
            job_name=job_name,
            channel_id=meta.channel_id,
            team_id=meta.team_id,
            requester_id=user_id,
            reason=reason,
            target=meta.task_id,
            target_label=meta.label,
        )

    # ChangeKind
    def describe(self, change: ChangeRequest) -> Described:
        who = safe(change.target_label or change.target, 300)
        name = safe(change.job_name or change.job_id, 200)
        return Described(
            title=f"remove a user from {change.job_name or change.job_id}",
            what=f":bust_in_silhouette: *Remove* `{who}` from *{name}* (`{escape(change.job_id)}`). The other users continue.",
            approve_label="Approve and remove",
            confirm_text=f"This takes `{who}` out of *{name}*: the user can't be added back to this batch and any mailbox sync done is discarded.",
            done=f"*Removed* `{who}` from the batch",
        )

    def apply(self, change: ChangeRequest) -> str:
        """Re-read the job and the user, then one task cancel; a 409 is explained."""
        try:
            job = self.graph.get_job(change.job_id)
            task = self.graph.get_task(change.job_id, change.target)
        except GraphNotFound:
            raise Refused("Graph no longer lists this user in the batch: nothing to remove.") from None
        except (GraphError, CredentialError) as error:
            raise Refused(refusal_text(error, "re-read the batch before removing the user")) from error
        verdict = task_rules.removal_eligibility(job, task, self.clock())
        if not verdict.allowed:
            raise Refused(escape(verdict.reason))
        try:
            answer = self.graph.cancel_task(change.job_id, change.target)
        except GraphConflict as error:
            raise Refused(
                "Microsoft Graph refused (409): the user can no longer be taken out of the batch. That happens once "
                "completeAfterDateTime has passed or the user's cutover has begun, or when the user's task is no "
                f"longer valid. The user's migration continues. Graph said: {safe(error.info.message, 500)}",
                error.request_id,
            ) from error
        except GraphNotFound as error:
            raise Refused(
                f"Microsoft Graph does not know this user or batch (404): {safe(error.info.message, 500)}",
                error.request_id,
            ) from error
        except GraphUnavailable as error:  # no clear answer (a timeout, a 5xx): the cancel may have been applied
            answer = self._after_unanswered(change, error)
        if self.conflicts is not None:
            self.conflicts.forget(change.job_id)  # the user is free for another batch now
        status = answer.get("status") or "Accepted"
        message = answer.get("message") or ""
        return f"Graph: `{safe(status, 60)}` {safe(message, 500)}".strip()

    def _after_unanswered(self, change: ChangeRequest, error: GraphUnavailable) -> dict:
        """Graph did not answer the cancel: read the user back to tell done (the user is gone) from not done."""
        said = safe(str(error), 300)
        try:
            self.graph.get_task(change.job_id, change.target)
        except GraphNotFound:
            return {"status": "Accepted", "message": "(Graph did not answer the cancel; the user is no longer listed.)"}
        except (GraphError, CredentialError) as reread:
            raise OutcomeUnknown(
                f"Microsoft Graph did not answer the cancel ({said}) and the user could not be read back "
                f"({safe(str(reread), 200)}), so the user may or may not have been removed."
            ) from reread
        raise Refused(
            f"Microsoft Graph did not answer the cancel ({said}) and the user is still in the batch: nothing was "
            "changed. Ask again.",
            error.request_id,
        )

    def made(self, change: ChangeRequest) -> bool:
        """The user is no longer listed in the batch."""
        try:
            self.graph.get_task(change.job_id, change.target)
        except GraphNotFound:
            return True
        return False
