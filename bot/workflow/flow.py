"""The /migrate workflow: confirm in a modal, start the action once, hand the run to the poller.

One flow for the three actions on a job (``ModalContext.action`` / ``Run.action``): ``migrate``, ``validate`` and
``cancel``. Validation moves no data, so it never asks for approval; migrate and cancel follow ``REQUIRE_APPROVAL``.
A cancel of a job the bot already follows is attached to that run (see :class:`bot.store.Run`).

Knows nothing of Bolt: listeners in ``handlers/`` parse and ack, then call these methods.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import CredentialError, GraphActionOutcomeUnknown, GraphError
from bot.graph.client import GraphClient
from bot.graph.eligibility import eligibility_for
from bot.graph.models import ACTION_EFFECTS, MigrationJob
from bot.slack.mrkdwn import escape
from bot.slack.web import Unanswered, permalink, post_root, tell_user
from bot.store import JobBusy, Run, RunState, Store, utcnow
from bot.ui import modal as blocks
from bot.ui.modal import ModalContext
from bot.ui.sentences import action_refusal_text
from bot.workflow.inflight import InFlight
from bot.workflow.policy import Policy

log = logging.getLogger(__name__)


class RunTracker(Protocol):
    """Follows a started run until its job ends (the poller)."""

    def follow(self, run_id: int) -> None: ...


class ApprovalDesk(Protocol):
    """Posts an approval request for a second person (see :mod:`bot.workflow.approvals`)."""

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
    """Opens the confirmation modal, starts the action exactly once, posts the root message."""

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
        inflight: InFlight | None = None,
    ) -> None:
        self.graph = graph
        self.inflight = inflight or InFlight()  # shared with the poller: root posts in flight
        self.slack = slack
        self.store = store
        self.policy = policy
        self.work = work
        self.tracker = tracker
        self.approvals = approvals
        self.clock = clock

    # /migrate <jobId>, /migrate validate <jobId>, /migrate cancel <jobId>, and the buttons that open them
    def open_confirmation(self, request: SlashRequest, job_id: str, action: str = "migrate") -> None:
        """Right after the ack: authorize, open the loading modal while the trigger is fresh, fetch in the
        background and update the modal with the live job and the verdict for ``action``."""
        decision = self.policy.may_migrate(request.user_id)
        if not decision.allowed:
            self._tell(request, f":no_entry: {decision.reason}")
            return
        busy = self.blocking_run(job_id, action)
        if busy is not None:
            self._tell(request, self.busy_text(busy))
            return
        ctx = ModalContext(request.channel_id, job_id, request.user_id, request.team_id, action=action)
        try:
            opened = self.slack.views_open(trigger_id=request.trigger_id, view=blocks.loading_modal(ctx))
        except SlackApiError as error:
            log.warning("views.open failed: %s", error.response.get("error"))
            self._tell(
                request,
                ":warning: Slack could not open the confirmation window "
                f"(`{escape(error.response.get('error'))}`). Run the command again.",
            )
            return
        view = opened["view"]
        self.work.submit(self._fill_modal, ctx, view["id"], view.get("hash"))

    def switch_confirmation(self, ctx: ModalContext, user_id: str, view_id: str, view_hash: str | None) -> None:
        """A button inside an open confirmation modal (e.g. "Validate this job"): turn that modal into the
        confirmation of ``ctx.action`` in place (no new trigger needed), loading first, then the live job."""
        decision = self.policy.may_migrate(user_id)
        busy = self.blocking_run(ctx.job_id, ctx.action) if decision.allowed else None
        if not decision.allowed or busy is not None:
            self.tell_user(
                ctx.channel_id,
                user_id,
                f":no_entry: {decision.reason}" if not decision.allowed else self.busy_text(busy),
            )
            return
        try:
            updated = self.slack.views_update(view_id=view_id, hash=view_hash, view=blocks.loading_modal(ctx))
        except SlackApiError as error:
            log.info("views.update %s (switch to %s) skipped: %s", view_id, ctx.action, error.response.get("error"))
            return
        self._fill_modal(ctx, view_id, updated["view"].get("hash"))

    def _fill_modal(self, ctx: ModalContext, view_id: str, view_hash: str | None) -> None:
        try:
            job = self.graph.get_job(ctx.job_id)
            eligibility = eligibility_for(ctx.action, job, self.clock())
            view = blocks.confirm_modal(
                ctx, job, eligibility, needs_approval=self.policy.require_approval, user_count=self._user_count(job)
            )
        except GraphError as error:
            log.info("get job %s failed: %s", ctx.job_id, error)
            view = blocks.graph_error_modal(ctx, error)
        except CredentialError as error:
            view = blocks.error_modal(
                ctx,
                "The bot's admin credential needs attention",
                str(error),
                "An operator runs `migrate-bot login` on the bot's host.",
            )
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
        """After the submission's ack: re-check authorization, then request approval or start now. Validation
        moves no data: it never needs approval."""
        place = self.policy.check_place(ctx.team_id, ctx.channel_id)
        decision = self.policy.may_migrate(user_id) if place.allowed else place
        if not decision.allowed or user_id != ctx.user_id:
            self.tell_user(ctx.channel_id, user_id, f":no_entry: {decision.reason or 'This request is not yours.'}")
            return
        if ctx.action != "validate" and self.policy.require_approval and self.approvals is not None:
            self.approvals.request(ctx, reason)
        else:
            self.start(ctx, reason)

    def start(self, ctx: ModalContext, reason: str) -> Run | None:
        """Record the run, call the action once, post the root message and hand the run to the poller."""
        try:
            run = self.create_run(ctx, reason, RunState.STARTING)
        except JobBusy as busy:
            self.tell_user(ctx.channel_id, ctx.user_id, self.busy_text(busy.existing))
            return None
        self.store.audit(
            "requested",
            job_id=ctx.job_id,
            run_id=run.id,
            actor=ctx.user_id,
            reason=reason,
            approval_required=False,
            action=run.action,
            parent_run_id=run.parent_run_id,
        )
        try:
            return self.launch(run, actor=ctx.user_id)
        except GraphActionOutcomeUnknown as error:
            self.keep_unsettled(run, error)
            return None
        except (GraphError, CredentialError) as error:
            self.store.transition(
                run.id, RunState.STARTING, RunState.NOT_STARTED, note=str(error), finished_at=self.clock()
            )
            self.tell_user(ctx.channel_id, run.requester_id, action_refusal_text(run.action, error, run.job_id))
            return None

    def keep_unsettled(self, run: Run, error: GraphActionOutcomeUnknown) -> None:
        """Graph neither confirmed nor refused the action and the job could not be read back: the run stays in
        STARTING, so the job stays blocked, and :meth:`reconcile_interrupted` settles it from the job's status."""
        self.store.update_run(run.id, note=str(error))
        noun = blocks.words(run.action).noun.lower()
        self.tell_user(
            run.channel_id,
            run.requester_id,
            f":warning: Microsoft Graph did not confirm the {noun} of `{escape(run.job_id)}` and the job "
            "could not be read back, so it may or may not have started. I'll read the job again in a few "
            "minutes and follow it if it started; until then the job stays reserved.",
        )

    def create_run(self, ctx: ModalContext, reason: str, state: RunState) -> Run:
        """Record a request for ``ctx.action``. A cancel of a job that a RUNNING run follows is attached to that
        run (its channel and thread). Raises :class:`JobBusy` when another request or run stands in the way."""
        busy = self.blocking_run(ctx.job_id, ctx.action)
        if busy is not None:
            raise JobBusy(busy)
        parent = self.parent_run(ctx.job_id) if ctx.action == "cancel" else None
        return self.store.create_run(
            job_id=ctx.job_id,
            channel_id=parent.channel_id if parent else ctx.channel_id,
            team_id=ctx.team_id,
            requester_id=ctx.user_id,
            reason=reason,
            state=state,
            action=ctx.action,
            parent_run_id=parent.id if parent else None,
            job_name=parent.job_name if parent else "",
        )

    def launch(self, run: Run, *, actor: str, before: MigrationJob | None = None) -> Run:
        """Call the run's action (``migrate``, ``validate`` or ``cancel``) for a run in STARTING, record and
        announce it, hand it to the poller (an attached cancel is followed by its parent run instead).

        On a Graph or credential error the attempt is audited and the error re-raised; the caller decides
        what the run becomes (the run stays in STARTING until then).
        """
        call = {
            "migrate": self.graph.migrate_job,
            "validate": self.graph.validate_job,
            "cancel": self.graph.cancel_job,
        }[run.action]
        event = f"{run.action}_called"
        try:
            result = call(run.job_id, before=before)
        except (GraphError, CredentialError) as error:
            self.store.audit(
                event,
                job_id=run.job_id,
                run_id=run.id,
                actor=actor,
                graph_request_id=getattr(error, "request_id", None),
                outcome="refused",
                error=str(error),
            )
            raise
        job = result.job
        now = self.clock()
        self.store.audit(
            event,
            job_id=run.job_id,
            run_id=run.id,
            actor=actor,
            graph_request_id=result.request_id,
            outcome="accepted",
            confirmed_by_reread=result.confirmed_by_reread,
            status=job.status_label,
            parent_run_id=run.parent_run_id,
        )
        if run.parent_run_id is not None:
            return self._attach(run, job, now)
        return self._run(run, job, now)

    def _run(self, run: Run, job: MigrationJob, now: datetime) -> Run:
        """STARTING → RUNNING with what Graph just said, then the root message; the poller takes over."""
        self.tracker.follow(run.id)  # before RUNNING: the poller's first look waits until the root is posted
        if not self.store.transition(
            run.id,
            RunState.STARTING,
            RunState.RUNNING,
            job_name=job.name,
            started_at=now,
            last_status=job.status_label,
            last_message=job.message,
            last_job_update=job.last_updated,
            last_seen_change_at=now,
            posted_status=job.status_label,
            posted_message=job.message,
        ):
            return self.store.get_run(run.id) or run  # settled elsewhere meanwhile
        return self._post_root(self.store.get_run(run.id) or run, job, now)

    def _attach(self, run: Run, job: MigrationJob, now: datetime) -> Run:
        """Graph accepted a cancel of a job that ``run``'s parent follows: say so in the parent's thread (the
        approval request there becomes the notice) and finish the cancel run. The parent's poller follows the
        job to ``cancelled`` and posts the one final notice."""
        parent = self.store.get_run(run.parent_run_id) if run.parent_run_id is not None else None
        text, notice = blocks.cancel_accepted(
            job=job, requester_id=run.requester_id, reason=run.reason, approver_id=run.approver_id
        )
        fields: dict = {}
        try:
            if run.root_ts:
                self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=notice)
            elif parent is not None and parent.root_ts:
                posted = self.slack.chat_postMessage(
                    channel=parent.channel_id,
                    thread_ts=parent.root_ts,
                    reply_broadcast=True,
                    text=text,
                    blocks=notice,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                fields["root_ts"] = posted["ts"]
            else:
                self.tell_user(run.channel_id, run.requester_id, text)
        except SlackApiError as error:
            log.warning("cancel notice for run %s failed: %s", run.id, error.response.get("error"))
            self.tell_user(run.channel_id, run.requester_id, text)
        self.store.transition(
            run.id,
            RunState.STARTING,
            RunState.FINISHED,
            job_name=job.name,
            started_at=now,
            finished_at=now,
            last_status=job.status_label,
            last_message=job.message,
            outcome=job.status_label,
            **fields,
        )
        return self.store.get_run(run.id) or run

    def reconcile_interrupted(self, started_before: datetime) -> None:
        """Settle runs left in STARTING since before ``started_before`` (the bot died around the Graph action, or
        Graph's answer was unclear): read the job and follow it when the action took effect, else close the run
        and tell the requester. Younger runs may still be in a live ``launch`` and are left alone."""
        for run in self.store.runs_in(RunState.STARTING):
            if (run.decided_at or run.created_at) >= started_before:
                continue
            try:
                job = self.graph.get_job(run.job_id)
            except (GraphError, CredentialError) as error:
                log.warning("run %s left in STARTING; job unreadable (%s): will try again", run.id, error)
                continue
            event = f"{run.action}_reconciled"
            if self._took_effect(run, job):
                now = self.clock()
                self.store.audit(event, job_id=run.job_id, run_id=run.id, outcome="running", status=job.status_label)
                if run.parent_run_id is not None:
                    self._attach(run, job, now)
                    continue
                self._run(run, job, now)
            else:
                noun = blocks.words(run.action).noun.lower()
                if not self.store.transition(
                    run.id,
                    RunState.STARTING,
                    RunState.NOT_STARTED,
                    finished_at=self.clock(),
                    note=f"interrupted before Graph accepted the {run.action}",
                ):
                    continue
                self.store.audit(
                    event, job_id=run.job_id, run_id=run.id, outcome="not_started", status=job.status_label
                )
                self.tell_user(
                    run.channel_id,
                    run.requester_id,
                    f":warning: The {noun} of *{escape(job.name)}* was interrupted (a restart or an "
                    f"unclear answer from Graph); Graph shows it did not start (status `{escape(job.status_label)}`). "
                    f"Run `{command_for(run.action, run.job_id)}` again when you are ready.",
                )

    @staticmethod
    def _took_effect(run: Run, job: MigrationJob) -> bool:
        since = run.decided_at or run.created_at
        newer = job.last_updated is not None and job.last_updated > since
        effects = ACTION_EFFECTS[run.action]
        if run.action == "validate":  # an expired validatePassed can be revalidated: only a newer result counts
            return job.status in effects and newer
        return job.status in effects or (run.action == "migrate" and job.job_type == "migrate" and newer)

    def _post_root(self, run: Run, job, now: datetime) -> Run:
        text, root_blocks = blocks.root_message(
            job=job,
            requester_id=run.requester_id,
            reason=run.reason,
            started_at=now,
            status=job.status_label,
            approver_id=run.approver_id,
            action=run.action,
        )
        try:
            if run.root_ts:  # the approval request becomes the root message
                self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=root_blocks)
                return run
            with self.inflight.hold(run.id):
                self.store.update_run(run.id, root_pending=True)
                ts = post_root(self.slack, channel_id=run.channel_id, run_id=run.id, text=text, blocks=root_blocks)
                return self.store.update_run(run.id, root_ts=ts, root_pending=False)
        except (Unanswered, OSError) as error:  # the poller finds the root, or posts it, on its first look
            log.warning("root message for run %s: no clear answer from Slack (%s)", run.id, error)
            return self.store.get_run(run.id) or run
        except SlackApiError as error:
            code = error.response.get("error")
            log.warning("root message for run %s failed: %s", run.id, code)
            self.store.update_run(run.id, root_pending=False)  # refused: nothing was posted
            self.tell_user(
                run.channel_id,
                run.requester_id,
                f":warning: The {blocks.words(run.action).noun.lower()} of *{escape(job.name)}* "
                "started, but I can't post in "
                f"<#{run.channel_id}> (`{escape(code)}`). Invite me with `/invite @migrate-bot`; "
                "I'll keep following the job and post as soon as I can.",
            )
            return run

    # Helpers
    def blocking_run(self, job_id: str, action: str) -> Run | None:
        """The active request or run that stands in the way of a new ``action`` request for the job, if any.
        A cancel is not blocked by a RUNNING migrate/validate run: it attaches to it (:meth:`parent_run`)."""
        for run in self.store.active_runs_for(job_id):
            if action == "cancel" and run.action != "cancel" and run.state == RunState.RUNNING:
                continue
            return run
        return None

    def parent_run(self, job_id: str) -> Run | None:
        """The RUNNING migrate or validate run that follows the job (a cancel of the job belongs to its thread)."""
        run = self.store.active_run_for(job_id, lane="migrate")
        return run if run is not None and run.state == RunState.RUNNING else None

    def busy_text(self, run: Run) -> str:
        """Tell a person that the job already has a request or run, with a link to its thread."""
        where = permalink(self.slack, run.channel_id, run.root_ts)
        what = f"an approval request ({run.action})" if run.state == RunState.PENDING else f"a {run.action} run"
        return (
            f":hourglass: Job `{escape(run.job_id)}` already has {what} in progress "
            f"(requested by <@{run.requester_id}>): see {where}."
        )

    def _tell(self, request: SlashRequest, text: str) -> None:
        tell_user(
            self.slack,
            channel_id=request.channel_id,
            user_id=request.user_id,
            text=text,
            response_url=request.response_url,
        )

    def tell_user(self, channel_id: str, user_id: str, text: str) -> None:
        tell_user(self.slack, channel_id=channel_id, user_id=user_id, text=text)


def command_for(action: str, job_id: str) -> str:
    """The slash command that requests ``action`` for the job."""
    return f"/migrate {job_id}" if action == "migrate" else f"/migrate {action} {job_id}"
