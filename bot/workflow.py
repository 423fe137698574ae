"""The /migrate workflow: confirm in a modal, start the migration once, hand the run to the poller.

Knows nothing of Bolt: listeners in ``handlers/`` parse and ack, then call these methods.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.blocks import ModalContext
from bot.errors import CredentialError, GraphError
from bot.graph import GraphClient
from bot.jobs import JobStatus, migrate_eligibility
from bot.messages import refusal_text
from bot.mrkdwn import escape
from bot.policy import Policy
from bot.slack_io import permalink, tell_user
from bot.store import JobBusy, Run, RunState, Store, utcnow

log = logging.getLogger(__name__)

#: Statuses showing that a ``migrate`` call took effect.
MIGRATION_UNDER_WAY = frozenset({JobStatus.PROCESSING, JobStatus.IN_PROGRESS, JobStatus.CUTTING_OVER,
                                 JobStatus.APPROVED, JobStatus.ADMIN_ACTION_REQUIRED})


class RunTracker(Protocol):
    """Follows a started run until its job ends (the poller)."""

    def follow(self, run_id: int) -> None: ...


class ApprovalDesk(Protocol):
    """Posts an approval request for a second person (see :mod:`bot.approvals`)."""

    def request(self, ctx: ModalContext, reason: str) -> None: ...


@dataclass(frozen=True)
class SlashRequest:
    """The parts of a slash command the workflow needs (ids come from the verified payload)."""

    user_id: str
    channel_id: str
    team_id: str | None
    trigger_id: str
    response_url: str | None = None


class MigrationFlow:
    """Opens the confirmation modal, starts the migration exactly once, posts the root message."""

    def __init__(
        self,
        *,
        graph: GraphClient,
        slack: WebClient,
        store: Store,
        policy: Policy,
        work: Executor,
        tracker: RunTracker,
        approvals: ApprovalDesk | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.graph = graph
        self.slack = slack
        self.store = store
        self.policy = policy
        self.work = work
        self.tracker = tracker
        self.approvals = approvals
        self.clock = clock

    # /migrate <jobId>
    def open_confirmation(self, request: SlashRequest, job_id: str) -> None:
        """Right after the ack: authorize, open the loading modal while the trigger is fresh, fetch in the
        background and update the modal with the live job."""
        decision = self.policy.may_migrate(request.user_id)
        if not decision.allowed:
            self._tell(request, f":no_entry: {decision.reason}")
            return
        busy = self.store.active_run_for(job_id)
        if busy is not None:
            self._tell(request, self.busy_text(busy))
            return
        ctx = ModalContext(request.channel_id, job_id, request.user_id, request.team_id)
        try:
            opened = self.slack.views_open(trigger_id=request.trigger_id, view=blocks.loading_modal(ctx))
        except SlackApiError as error:
            log.warning("views.open failed: %s", error.response.get("error"))
            self._tell(request, ":warning: Slack could not open the confirmation window "
                                f"(`{escape(error.response.get('error'))}`). Run the command again.")
            return
        view = opened["view"]
        self.work.submit(self._fill_modal, ctx, view["id"], view.get("hash"))

    def _fill_modal(self, ctx: ModalContext, view_id: str, view_hash: str | None) -> None:
        try:
            job = self.graph.get_job(ctx.job_id)
            eligibility = migrate_eligibility(job, self.clock())
            view = blocks.confirm_modal(ctx, job, eligibility, needs_approval=self.policy.require_approval,
                                        user_count=self._user_count(job))
        except GraphError as error:
            log.info("get job %s failed: %s", ctx.job_id, error)
            view = blocks.graph_error_modal(ctx, error)
        except CredentialError as error:
            view = blocks.error_modal(ctx, "The bot's admin credential needs attention", str(error),
                                      "An operator runs `migrate-bot login` on the bot's host.")
        try:
            self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as error:  # closed by the person, or replaced meanwhile
            log.info("views.update %s skipped: %s", view_id, error.response.get("error"))

    def _user_count(self, job) -> int | None:
        """How many users the job moves: ``resources`` is emptied after validation, so count the tasks."""
        if job.resources:
            return len(job.resources)
        try:
            return len(self.graph.list_tasks(job.id))
        except (GraphError, CredentialError) as error:
            log.info("counting users of %s failed: %s", job.id, error)
            return None

    # Modal submitted
    def confirm(self, ctx: ModalContext, user_id: str, reason: str) -> None:
        """After the submission's ack: re-check authorization, then request approval or start now."""
        place = self.policy.check_place(ctx.team_id, ctx.channel_id)
        decision = self.policy.may_migrate(user_id) if place.allowed else place
        if not decision.allowed or user_id != ctx.user_id:
            self.tell_user(ctx.channel_id, user_id, f":no_entry: {decision.reason or 'This request is not yours.'}")
            return
        if self.policy.require_approval and self.approvals is not None:
            self.approvals.request(ctx, reason)
        else:
            self.start(ctx, reason)

    def start(self, ctx: ModalContext, reason: str) -> Run | None:
        """Record the run, call ``migrate`` once, post the root message and hand the run to the poller."""
        try:
            run = self.store.create_run(job_id=ctx.job_id, channel_id=ctx.channel_id, team_id=ctx.team_id,
                                        requester_id=ctx.user_id, reason=reason, state=RunState.STARTING)
        except JobBusy as busy:
            self.tell_user(ctx.channel_id, ctx.user_id, self.busy_text(busy.existing))
            return None
        self.store.audit("requested", job_id=ctx.job_id, run_id=run.id, actor=ctx.user_id, reason=reason,
                         approval_required=False)
        try:
            return self.launch(run, actor=ctx.user_id)
        except (GraphError, CredentialError) as error:
            self.store.transition(run.id, RunState.STARTING, RunState.NOT_STARTED, note=str(error),
                                  finished_at=self.clock())
            self.tell_user(run.channel_id, run.requester_id, refusal_text(error))
            return None

    def launch(self, run: Run, *, actor: str) -> Run:
        """Call ``migrate`` for a run in STARTING, record and announce it, hand it to the poller.

        On a Graph or credential error the attempt is audited and the error re-raised; the caller decides
        what the run becomes (the run stays in STARTING until then).
        """
        try:
            result = self.graph.migrate_job(run.job_id)
        except (GraphError, CredentialError) as error:
            self.store.audit("migrate_called", job_id=run.job_id, run_id=run.id, actor=actor,
                             graph_request_id=getattr(error, "request_id", None), outcome="refused",
                             error=str(error))
            raise
        job = result.job
        now = self.clock()
        self.store.audit("migrate_called", job_id=run.job_id, run_id=run.id, actor=actor,
                         graph_request_id=result.request_id, outcome="accepted",
                         confirmed_by_reread=result.confirmed_by_reread, status=job.status_label)
        run = self.store.update_run(run.id, state=RunState.RUNNING, job_name=job.name, started_at=now,
                                    last_status=job.status_label, last_message=job.message,
                                    last_job_update=job.last_updated, last_seen_change_at=now,
                                    posted_status=job.status_label, posted_message=job.message)
        run = self._post_root(run, job, now)
        self.tracker.follow(run.id)
        return run

    def reconcile_interrupted(self) -> None:
        """Settle runs a crash left in STARTING (the bot died around the ``migrate`` call): read the job and
        follow it when the migration took effect, else close the run and tell the requester."""
        for run in self.store.runs_in(RunState.STARTING):
            try:
                job = self.graph.get_job(run.job_id)
            except (GraphError, CredentialError) as error:
                log.warning("run %s left in STARTING; job unreadable (%s): will retry at next start", run.id, error)
                continue
            since = run.decided_at or run.created_at
            took_effect = job.status in MIGRATION_UNDER_WAY or (
                job.job_type == "migrate" and job.last_updated is not None and job.last_updated > since)
            if took_effect:
                now = self.clock()
                run = self.store.update_run(run.id, state=RunState.RUNNING, job_name=job.name, started_at=now,
                                            last_status=job.status_label, last_message=job.message,
                                            last_job_update=job.last_updated, last_seen_change_at=now)
                self.store.audit("migrate_reconciled", job_id=run.job_id, run_id=run.id, outcome="running",
                                 status=job.status_label)
                self._post_root(run, job, now)
                self.tracker.follow(run.id)
            else:
                self.store.transition(run.id, RunState.STARTING, RunState.NOT_STARTED, finished_at=self.clock(),
                                      note="interrupted before Graph accepted the migration")
                self.store.audit("migrate_reconciled", job_id=run.job_id, run_id=run.id, outcome="not_started",
                                 status=job.status_label)
                self.tell_user(run.channel_id, run.requester_id,
                               f":warning: The bot restarted while starting the migration of *{escape(job.name)}*; "
                               f"Graph shows it did not start (status `{escape(job.status_label)}`). "
                               "Run `/migrate` again when you are ready.")

    def _post_root(self, run: Run, job, now: datetime) -> Run:
        text, root_blocks = blocks.root_message(job=job, requester_id=run.requester_id, reason=run.reason,
                                                started_at=now, status=job.status_label,
                                                approver_id=run.approver_id)
        try:
            if run.root_ts:  # the approval request becomes the root message
                self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=root_blocks)
                return run
            posted = self.slack.chat_postMessage(channel=run.channel_id, text=text, blocks=root_blocks,
                                                 unfurl_links=False, unfurl_media=False)
            return self.store.update_run(run.id, root_ts=posted["ts"])
        except SlackApiError as error:
            code = error.response.get("error")
            log.warning("root message for run %s failed: %s", run.id, code)
            self.tell_user(run.channel_id, run.requester_id,
                            f":warning: The migration of *{escape(job.name)}* started, but I can't post in "
                            f"<#{run.channel_id}> (`{escape(code)}`). Invite me with `/invite @migrate-bot`; "
                            "I'll keep following the job and post as soon as I can.")
            return run

    # Helpers
    def busy_text(self, run: Run) -> str:
        """Tell a person that the job already has a request or run, with a link to its thread."""
        where = permalink(self.slack, run.channel_id, run.root_ts)
        what = "an approval request" if run.state == RunState.PENDING else f"a {run.action} run"
        return (f":hourglass: Job `{escape(run.job_id)}` already has {what} in progress "
                f"(requested by <@{run.requester_id}>): see {where}.")

    def _tell(self, request: SlashRequest, text: str) -> None:
        tell_user(self.slack, channel_id=request.channel_id, user_id=request.user_id, text=text,
                  response_url=request.response_url)

    def tell_user(self, channel_id: str, user_id: str, text: str) -> None:
        tell_user(self.slack, channel_id=channel_id, user_id=user_id, text=text)
