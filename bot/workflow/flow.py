"""The /migrate workflow: confirm in a modal, start the action once, hand the run to the poller.

One flow for the three actions on a job (``ModalContext.action`` / ``Run.action``): ``migrate``, ``validate`` and
``cancel``. Validation moves no data, so it never asks for approval; migrate and cancel follow ``REQUIRE_APPROVAL``.
A cancel of a job the bot already follows is attached to that run (see :class:`bot.store.Run`).

Knows nothing of Bolt: listeners in ``handlers/`` parse and ack, then call these methods. A submitted modal goes
to :meth:`bot.workflow.approvals.Approvals.confirm`, which asks for approval or calls :meth:`MigrationFlow.start`.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import BatchConflict, CredentialError, GraphActionOutcomeUnknown, GraphError
from bot.graph.client import GraphClient
from bot.graph.conflicts import BatchConflicts
from bot.graph.eligibility import Eligibility, eligibility_for
from bot.graph.models import MigrationJob, took_effect
from bot.slack.mrkdwn import escape
from bot.slack.web import answer_lost, permalink, slack_error, tell_user
from bot.store import JobBusy, Run, RunState, Store, utcnow
from bot.ui import approval as approval_blocks
from bot.ui import modal as blocks
from bot.ui.modal import ModalContext
from bot.ui.sentences import action_refusal_text, cant_post_text, not_recorded_text
from bot.ui.thread import root_message
from bot.workflow.policy import Policy
from bot.workflow.root_post import post_root_once

log = logging.getLogger(__name__)


class RunTracker(Protocol):
    """Follows a started run until its job ends (the poller)."""

    def follow(self, run_id: int) -> None: ...

    def refresh_root(self, run_id: int) -> None:
        """Redraw the run's root card on the next poll (an update of it failed)."""


class ActionNotRecorded(Exception):
    """Graph accepted a run's action but the database refused to record it; the people were told and
    :meth:`MigrationFlow.settle_unrecorded` records it once the database takes writes."""


@dataclass(frozen=True)
class Accepted:
    """What Graph answered when it accepted a run's action, kept until it is recorded."""

    job: MigrationJob
    at: datetime
    audit: dict


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
        clock: Callable[[], datetime] = utcnow,
        conflicts: BatchConflicts | None = None,
    ) -> None:
        self.graph = graph
        self.slack = slack
        self.store = store
        self.policy = policy
        self.work = work
        self.tracker = tracker
        self.clock = clock
        self._guard = threading.Lock()
        self._unrecorded: dict[int, Accepted] = {}  # accepted by Graph, refused by the database: settle_unrecorded
        #: One active batch per user (:class:`bot.graph.conflicts.BatchConflicts`), checked before ``migrate``.
        self.conflicts = conflicts

    # /migrate <jobId>, /migrate validate <jobId>, /migrate cancel <jobId>, and the buttons that open them
    def open_confirmation(self, request: SlashRequest, job_id: str, action: str = "migrate") -> None:
        """Right after the ack (and the checkpoint): open the loading modal while the trigger is fresh, fetch in
        the background and update the modal with the live job and the verdict for ``action``."""
        busy = self.blocking_run(job_id, action)
        if busy is not None:
            self._tell(request, self.busy_text(busy))
            return
        ctx = ModalContext(request.channel_id, job_id, request.user_id, request.team_id, action=action)
        external_id = f"migrate-bot-{secrets.token_hex(12)}"
        try:  # sent once: a resent views.open finds its trigger_id used (the client never resends it)
            opened = self.slack.views_open(trigger_id=request.trigger_id, view=blocks.loading_modal(ctx, external_id))
        except (SlackApiError, OSError) as error:
            if not answer_lost(error):
                log.warning("views.open failed: %s", slack_error(error))
                self._tell(
                    request,
                    ":warning: Slack could not open the confirmation window "
                    f"(`{escape(slack_error(error))}`). Run the command again.",
                )
                return
            # The modal may be open on "Loading": fill it by its external_id, or say it never opened.
            log.warning("views.open: no clear answer from Slack (%s)", slack_error(error))
            self.work.submit(self._fill_modal, ctx, None, None, external_id=external_id, request=request)
            return
        view = opened["view"]
        self.work.submit(self._fill_modal, ctx, view["id"], view.get("hash"))

    def switch_confirmation(self, ctx: ModalContext, user_id: str, view_id: str, view_hash: str | None) -> None:
        """A button inside an open confirmation modal (e.g. "Validate this job"): turn that modal into the
        confirmation of ``ctx.action`` in place (no new trigger needed), loading first, then the live job."""
        busy = self.blocking_run(ctx.job_id, ctx.action)
        if busy is not None:
            self.tell_user(ctx.channel_id, user_id, self.busy_text(busy))
            return
        try:
            updated = self.slack.views_update(view_id=view_id, hash=view_hash, view=blocks.loading_modal(ctx))
        except SlackApiError as error:
            log.info("views.update %s (switch to %s) skipped: %s", view_id, ctx.action, error.response.get("error"))
            return
        self._fill_modal(ctx, view_id, updated["view"].get("hash"))

    def _fill_modal(
        self,
        ctx: ModalContext,
        view_id: str | None,
        view_hash: str | None,
        *,
        external_id: str | None = None,
        request: SlashRequest | None = None,
    ) -> None:
        """Show the live job in the open modal (by ``view_id``, or by ``external_id`` when the answer to
        ``views.open`` was lost: then ``request``'s person is told when the modal turns out not to be open)."""
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
            if view_id is not None:
                updated = self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
            else:
                updated = self.slack.views_update(external_id=external_id, view={**view, "external_id": external_id})
        except (SlackApiError, OSError) as error:  # closed by the person, or replaced meanwhile
            log.info("views.update %s skipped: %s", view_id or external_id, slack_error(error))
            if request is not None and slack_error(error) == "not_found":
                self._tell(request, ":warning: Slack did not open the confirmation window. Run the command again.")
            return
        if ctx.action == "migrate" and view.get("submit") and self.conflicts is not None:
            self._show_conflicts(ctx, job, updated["view"]["id"], updated["view"].get("hash"))

    def _show_conflicts(self, ctx: ModalContext, job: MigrationJob, view_id: str, view_hash: str | None) -> None:
        """After the modal shows the job: compare its users with the other active batches (slower: other jobs'
        users) and, on a conflict, turn the verdict into the refusal. ``launch`` checks again right before
        ``migrate``, so a submit made meanwhile is refused there."""
        assert self.conflicts is not None
        try:
            self.conflicts.ensure_alone(job.id)
            return
        except BatchConflict as conflict:
            eligibility = Eligibility(False, conflict.info.message, conflict.hint)
        view = blocks.confirm_modal(
            ctx, job, eligibility, needs_approval=self.policy.require_approval, user_count=self._user_count(job)
        )
        try:
            self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
        except (SlackApiError, OSError) as error:
            log.info("views.update %s (conflict) skipped: %s", view_id, slack_error(error))

    def _user_count(self, job) -> int | None:
        """How many users the job moves: ``resources`` is emptied after validation, so count the tasks."""
        if job.resources:
            return len(job.resources)
        try:
            return len(self.graph.list_tasks(job.id))
        except (GraphError, CredentialError) as error:
            log.info("counting users of %s failed: %s", job.id, error)
            return None

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
        except ActionNotRecorded:  # the person was told; settle_unrecorded records it later
            return None
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
        if run.action == "migrate" and self.conflicts is not None:
            try:
                self.conflicts.ensure_alone(run.job_id, fresh=True)
            except BatchConflict as conflict:  # refused by the bot: Graph is not called
                self.store.audit("batch_conflict", job_id=run.job_id, run_id=run.id, actor=actor, why=str(conflict))
                raise
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
        accepted = Accepted(
            job=job,
            at=self.clock(),
            audit=dict(
                event_name=event,
                job_id=run.job_id,
                run_id=run.id,
                actor=actor,
                graph_request_id=result.request_id,
                outcome="accepted",
                confirmed_by_reread=result.confirmed_by_reread,
                status=job.status_label,
                parent_run_id=run.parent_run_id,
            ),
        )
        try:
            return self._record_accepted(run, accepted)
        except SQLAlchemyError as error:
            log.error(
                "run %s: Graph accepted the %s but the database refused the record: %s", run.id, run.action, error
            )
            with self._guard:
                self._unrecorded[run.id] = accepted
            self._tell_unrecorded(run, actor)
            raise ActionNotRecorded(run.id) from error

    def _record_accepted(self, run: Run, accepted: Accepted) -> Run:
        """STARTING → RUNNING (or FINISHED, an attached cancel) with the accepted event, in one transaction."""
        if run.parent_run_id is not None:
            return self._attach(run, accepted.job, accepted.at, audit=accepted.audit)
        return self._run(run, accepted.job, accepted.at, audit=accepted.audit)

    def settle_unrecorded(self) -> None:
        """Record the runs whose Graph action was accepted while the database refused the record, as soon as it
        takes writes again, with the time Graph accepted them (run every few seconds; cheap when there are none)."""
        with self._guard:
            waiting = list(self._unrecorded.items())
        for run_id, accepted in waiting:
            try:
                run = self.store.get_run(run_id)
                if run is not None and run.state == RunState.STARTING:
                    self._record_accepted(run, accepted)
                    log.info("run %s recorded after the database took writes again", run_id)
            except SQLAlchemyError as error:
                log.warning("run %s still can't be recorded: %s", run_id, error)
                return
            with self._guard:
                self._unrecorded.pop(run_id, None)

    def _tell_unrecorded(self, run: Run, actor: str) -> None:
        noun = blocks.words(run.action).noun.lower()
        text = (
            f":warning: Microsoft Graph accepted the {noun} of `{escape(run.job_id)}`, but the bot's database refused "
            "to record it. I'll record it and post its status in the channel as soon as the database takes writes "
            "again; the bot's operator can check with `migrate-bot check`."
        )
        for person in dict.fromkeys((run.requester_id, actor)):
            self.tell_user(run.channel_id, person, text)

    def tell_not_recorded(self, channel_id: str, user_id: str, what: str) -> None:
        """Tell ``user_id`` that ``what`` could not be recorded (the database refused the write): nothing was done."""
        self.tell_user(channel_id, user_id, not_recorded_text(what))

    def _run(self, run: Run, job: MigrationJob, now: datetime, *, audit: dict | None = None) -> Run:
        """STARTING → RUNNING with what Graph just said (and ``audit``, in the same transaction), then the root
        message; the poller takes over."""
        self.tracker.follow(run.id)  # before RUNNING: the poller's first look waits until the root is posted
        if not self.store.transition(
            run.id,
            RunState.STARTING,
            RunState.RUNNING,
            audit=audit,
            job_name=job.name,
            started_at=now,
            last_status=job.status_label,
            last_message=job.message,
            last_job_update=job.last_updated,
            last_seen_change_at=now,
            posted_status=job.status_label,
            posted_message=job.message,
            complete_after=job.complete_after,
        ):
            return self.store.get_run(run.id) or run  # settled elsewhere meanwhile
        return self._post_root(self.store.get_run(run.id) or run, job, now)

    def _attach(self, run: Run, job: MigrationJob, now: datetime, *, audit: dict | None = None) -> Run:
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
        except (SlackApiError, OSError) as error:
            log.warning("cancel notice for run %s failed: %s", run.id, slack_error(error))
            self.tell_user(run.channel_id, run.requester_id, text)
        self.store.transition(
            run.id,
            RunState.STARTING,
            RunState.FINISHED,
            audit=audit,
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
            # The request passed its eligibility check, so only a validate can start from one of its own
            # effects (an expired validatePassed): for it, only a newer result counts.
            since = run.decided_at or run.created_at
            if took_effect(run.action, job, since=since, came_from_elsewhere=run.action != "validate"):
                # The action was called right after the request was decided (or made): that is when it started,
                # not now, however long the bot was down.
                started = since
                audit = dict(
                    event_name=event, job_id=run.job_id, run_id=run.id, outcome="running", status=job.status_label
                )
                if run.parent_run_id is not None:
                    self._attach(run, job, started, audit=audit)
                    continue
                self._run(run, job, started, audit=audit)
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
                text = (
                    f":warning: The {noun} of *{escape(job.name)}* was interrupted (a restart or an "
                    f"unclear answer from Graph); Graph shows it did not start (status `{escape(job.status_label)}`). "
                    f"Run `{command_for(run.action, run.job_id)}` again when you are ready."
                )
                self._close_request_message(run, job.name, text)
                self.tell_user(run.channel_id, run.requester_id, text)
                if run.approver_id and run.approver_id != run.requester_id:
                    self.tell_user(run.channel_id, run.approver_id, text)

    def _close_request_message(self, run: Run, job_name: str, headline: str) -> None:
        """An approved request that never started: its message (still "starting…") says so, without buttons."""
        if not run.root_ts:
            return
        by = f"Approved by <@{run.approver_id}>. " if run.approver_id else ""
        text, decided = approval_blocks.decided(
            job_name=job_name or run.job_id,
            requester_id=run.requester_id,
            reason=run.reason,
            headline=by + headline,
            note="Nothing was started.",
            action=run.action,
        )
        try:
            self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=decided)
        except (SlackApiError, OSError) as error:
            log.warning("request message of run %s not updated: %s", run.id, slack_error(error))

    def _post_root(self, run: Run, job, now: datetime) -> Run:
        text, root_blocks = root_message(
            job=job,
            requester_id=run.requester_id,
            reason=run.reason,
            started_at=now,
            status=job.status_label,
            approver_id=run.approver_id,
            action=run.action,
        )
        if run.root_ts:  # the approval request becomes the root message
            try:
                self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=root_blocks)
            except (SlackApiError, OSError) as error:  # its buttons must not stay: the poller redraws it
                log.warning("root card of run %s not updated: %s", run.id, slack_error(error))
                self.tracker.refresh_root(run.id)
            return run
        run, code, lost = post_root_once(self.slack, self.store, run, text, root_blocks, now=self.clock())
        if lost:  # the poller finds the root, or posts it, on its first look
            log.warning("root message for run %s: no clear answer from Slack (%s)", run.id, code)
        elif code is not None:
            log.warning("root message for run %s failed: %s", run.id, code)
            self.tell_user(
                run.channel_id,
                run.requester_id,
                f"The {blocks.words(run.action).noun.lower()} of *{escape(job.name)}* started. "
                + cant_post_text(
                    "its status", run.channel_id, code, "I'll keep following the job and post as soon as I can."
                ),
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
