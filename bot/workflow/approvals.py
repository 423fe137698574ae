"""Four-eyes approval: request in the channel, one atomic decision, exactly one Graph action call.

The same machinery serves every action that needs approval (``migrate`` and ``cancel``; ``validate`` moves no data
and never asks): the run's ``action`` picks the eligibility check, the texts and the Graph call
(:meth:`bot.workflow.flow.MigrationFlow.launch`). A cancel of a job the bot follows asks in that run's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import (
    CredentialError,
    GraphActionOutcomeUnknown,
    GraphError,
    GraphThrottled,
    GraphUnavailable,
)
from bot.graph.client import GraphClient
from bot.graph.eligibility import eligibility_for
from bot.slack.mrkdwn import escape, user
from bot.slack.web import ROOT_EVENT, Unanswered, answer_lost, find_root, find_tagged, slack_error
from bot.store import JobBusy, Run, RunState, Store, utcnow
from bot.ui import approval as approval_blocks
from bot.ui.modal import ModalContext, words
from bot.ui.sentences import action_refusal_text, cant_post_text, refusal_text
from bot.workflow.flow import ActionNotRecorded, MigrationFlow, command_for
from bot.workflow.policy import Policy

log = logging.getLogger(__name__)

UNPOSTED_REQUEST_GRACE = timedelta(minutes=10)


class Approvals:
    """Posts approval requests and applies Approve / Reject clicks and expiry to them."""

    def __init__(
        self,
        *,
        flow: MigrationFlow,
        graph: GraphClient,
        slack: WebClient,
        store: Store,
        policy: Policy,
        ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.flow = flow
        self.graph = graph
        self.slack = slack
        self.store = store
        self.policy = policy
        self.ttl = ttl
        self.clock = clock

    # Modal submitted
    def confirm(self, ctx: ModalContext, reason: str, view_id: str | None = None) -> Run | None:
        """After the submission's ack and the checkpoint: request approval (``REQUIRE_APPROVAL``) or start now.
        Validation moves no data: it never needs approval (:meth:`request` starts it). A submission (``view_id``)
        is acted on once: a re-delivery of it changes nothing."""
        try:
            if view_id is not None and not self.store.claim_submission(view_id, ctx.user_id):
                log.warning("submission of view %s delivered again: ignored", view_id)
                return None
            if self.policy.require_approval:
                return self.request(ctx, reason)
            return self.flow.start(ctx, reason)
        except SQLAlchemyError as error:
            log.error("request for job %s not recorded: %s", ctx.job_id, error)
            self.flow.tell_not_recorded(ctx.channel_id, ctx.user_id, f"your request for `{escape(ctx.job_id)}`")
            return None

    # Request
    def request(self, ctx: ModalContext, reason: str) -> Run | None:
        """Record a pending request and post it with Approve / Reject buttons, mentioning the approvers. A cancel
        of a job that a running run follows is asked in that run's thread (broadcast to the channel)."""
        if ctx.action == "validate":  # moves no data: never waits for a second person
            return self.flow.start(ctx, reason)
        try:
            run = self.flow.create_run(ctx, reason, RunState.PENDING)
        except JobBusy as busy:
            self.flow.tell_user(ctx.channel_id, ctx.user_id, self.flow.busy_text(busy.existing))
            return None
        parent = self.store.get_run(run.parent_run_id) if run.parent_run_id is not None else None
        thread_ts = parent.root_ts if parent is not None else None
        try:
            job = self.graph.get_job(ctx.job_id)
        except (GraphError, CredentialError) as error:
            self.store.transition(
                run.id, RunState.PENDING, RunState.NOT_STARTED, note=str(error), finished_at=self.clock()
            )
            self.flow.tell_user(ctx.channel_id, ctx.user_id, refusal_text(error, "request approval"))
            return None
        text, blocks = approval_blocks.approval_request(
            run_id=run.id,
            job=job,
            eligibility=eligibility_for(run.action, job, self.clock()),
            requester_id=ctx.user_id,
            reason=reason,
            mentions=self.policy.approver_mentions(),
            expires_at=run.created_at + self.ttl,
            action=run.action,
        )
        try:
            posted = self.slack.chat_postMessage(
                channel=run.channel_id,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                reply_broadcast=True if thread_ts else None,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": ROOT_EVENT, "event_payload": {"run_id": run.id}},
            )
            ts: str | None = posted["ts"]
        except (SlackApiError, OSError) as error:
            code = slack_error(error)
            try:  # a lost answer (5xx, dropped connection): the request may be in the channel with live buttons
                ts = self._find_request(run, thread_ts) if answer_lost(error) else None
            except Unanswered:  # Slack can't tell now: the expiry sweep looks again (expire_overdue)
                log.warning("approval request of run %s: no clear answer from Slack (%s)", run.id, code)
                self.store.update_run(run.id, job_name=job.name)
                return run
            if ts is None:
                self.store.transition(
                    run.id, RunState.PENDING, RunState.NOT_STARTED, note=f"slack: {code}", finished_at=self.clock()
                )
                self.flow.tell_user(
                    ctx.channel_id,
                    ctx.user_id,
                    cant_post_text("the approval request", run.channel_id, code, "nothing was requested: try again."),
                )
                return None
        run = self.store.update_run(run.id, root_ts=ts, job_name=job.name)
        self.store.audit(
            "requested",
            job_id=run.job_id,
            run_id=run.id,
            actor=ctx.user_id,
            reason=reason,
            approval_required=True,
            status=job.status_label,
            action=run.action,
            parent_run_id=run.parent_run_id,
        )
        return run

    # Decide (who may is the checkpoint's business: bot.workflow.access)
    def approve(self, run_id: int, user_id: str) -> Run | None:
        """Approve: one atomic pending → starting step, re-read the job, call the run's action once. When the
        database refuses a write before the action, the approver is told that nothing was done."""
        try:
            return self._approve(run_id, user_id)
        except ActionNotRecorded:  # Graph accepted it: the people were told, it is recorded later
            return None
        except SQLAlchemyError as error:
            log.error("approval of run %s not recorded: %s", run_id, error)
            self._tell_not_recorded(run_id, user_id, "your approval")
            return None

    def _approve(self, run_id: int, user_id: str) -> Run | None:
        run = self._pending_or_explain(run_id, user_id)
        if run is None:
            return None
        now = self.clock()
        if not self.store.transition(run.id, RunState.PENDING, RunState.STARTING, approver_id=user_id, decided_at=now):
            self._explain_lost(run.id, user_id)
            return None
        self.store.audit("approved", job_id=run.job_id, run_id=run.id, actor=user_id, action=run.action)
        doing = "cancelling the job" if run.action == "cancel" else "starting the migration"
        self._show(run, f":white_check_mark: Approved by {user(user_id)}: {doing}…")
        try:
            job = self.graph.get_job(run.job_id)
            eligibility = eligibility_for(run.action, job, self.clock())
            if not eligibility.allowed:
                self._finish_unstarted(
                    run,
                    user_id,
                    f":no_entry: Approved by {user(user_id)}, but the job can no "
                    f"longer be {words(run.action).can}: {escape(eligibility.reason)}",
                    eligibility.next_step,
                )
                return None
            return self.flow.launch(self.store.get_run(run.id) or run, actor=user_id, before=job)
        except GraphActionOutcomeUnknown as error:
            self._show(
                run,
                f":warning: Approved by {user(user_id)}, but Microsoft Graph did not confirm the action. "
                "I'll read the job again in a few minutes and follow it here if it started.",
            )
            self.flow.keep_unsettled(run, error)
            return None
        except (GraphThrottled, GraphUnavailable) as error:
            self._back_to_pending(run, user_id, error)
            return None
        except (GraphError, CredentialError) as error:
            self._finish_unstarted(run, user_id, action_refusal_text(run.action, error, run.job_id), "")
            return None

    def open_reject(self, run_id: int, user_id: str, trigger_id: str, channel_id: str, message_ts: str) -> None:
        """Open the small "why?" modal while the request is still pending."""
        run = self.store.get_run(run_id)
        if run is None or run.state != RunState.PENDING:
            why_not = self._decided_text(run) if run is not None else "This request no longer exists."
            self.flow.tell_user(channel_id, user_id, f":no_entry: {why_not}")
            return
        view = approval_blocks.reject_modal(run_id=run_id, channel_id=channel_id, message_ts=message_ts)
        try:
            self.slack.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as error:
            self.flow.tell_user(
                channel_id,
                user_id,
                ":warning: Slack could not open the rejection window "
                f"(`{escape(error.response.get('error'))}`). Click Reject again.",
            )

    def reject(self, run_id: int, user_id: str, note: str) -> Run | None:
        """Reject (or withdraw, by the requester): buttons go, the message shows who and why."""
        try:
            return self._reject(run_id, user_id, note)
        except SQLAlchemyError as error:
            log.error("rejection of run %s not recorded: %s", run_id, error)
            self._tell_not_recorded(run_id, user_id, "your rejection")
            return None

    def _tell_not_recorded(self, run_id: int, user_id: str, what: str) -> None:
        try:
            run = self.store.get_run(run_id)
        except SQLAlchemyError:
            run = None
        self.flow.tell_not_recorded(run.channel_id if run is not None else user_id, user_id, what)

    def _reject(self, run_id: int, user_id: str, note: str) -> Run | None:
        run = self._pending_or_explain(run_id, user_id)
        if run is None:
            return None
        if not self.store.transition(
            run.id,
            RunState.PENDING,
            RunState.REJECTED,
            approver_id=user_id,
            decided_at=self.clock(),
            finished_at=self.clock(),
            decision_note=note or None,
        ):
            self._explain_lost(run.id, user_id)
            return None
        verb = "Withdrawn" if user_id == run.requester_id else "Rejected"
        self.store.audit(
            "rejected",
            job_id=run.job_id,
            run_id=run.id,
            actor=user_id,
            note=note,
            withdrawn=user_id == run.requester_id,
        )
        why = f": {escape(note)}" if note else " (no reason given)"
        self._show(run, f":x: {verb} by {user(user_id)}{why}")
        if user_id != run.requester_id:
            what = "cancel" if run.action == "cancel" else "migration"
            self.flow.tell_user(
                run.channel_id,
                run.requester_id,
                f":x: Your {what} request for *{escape(run.job_name)}* was rejected by {user(user_id)}{why}",
            )
        return self.store.get_run(run.id)

    # Expiry
    def expire_overdue(self) -> int:
        """Expire pending requests older than ``APPROVAL_TTL_HOURS``; returns how many."""
        expired = 0
        now = self.clock()
        for run in self.store.runs_in(RunState.PENDING):
            # A request whose message never got posted (a crash in between) reserves the job for no one to see;
            # one whose answer was lost may be in the channel after all: look for it first.
            unposted = run.root_ts is None and run.created_at <= now - UNPOSTED_REQUEST_GRACE
            if unposted:
                try:
                    found = self._find_request(run, self._thread_of(run))
                except Unanswered:
                    continue
                if found:
                    run = self.store.update_run(run.id, root_ts=found)
                    unposted = False
            if (run.created_at <= now - self.ttl or unposted) and self._expire(run):
                expired += 1
        return expired

    def _thread_of(self, run: Run) -> str | None:
        parent = self.store.get_run(run.parent_run_id) if run.parent_run_id is not None else None
        return parent.root_ts if parent is not None else None

    def _find_request(self, run: Run, thread_ts: str | None) -> str | None:
        """The ts of the run's approval request (by its metadata) in the channel or the parent's thread, None when
        it is not there. Raises :class:`Unanswered` when Slack can't tell now."""
        since = run.created_at.timestamp() - 1
        if thread_ts is None:
            return find_root(self.slack, channel_id=run.channel_id, run_id=run.id, since=since)
        return find_tagged(
            lambda cursor: self.slack.conversations_replies(
                channel=run.channel_id, ts=thread_ts, cursor=cursor, include_all_metadata=True, limit=200
            ),
            event_type=ROOT_EVENT,
            run_id=run.id,
            where=f"the thread of run {run.parent_run_id}",
        )

    def _expire(self, run: Run) -> bool:
        if not self.store.transition(run.id, RunState.PENDING, RunState.EXPIRED, finished_at=self.clock()):
            return False
        self.store.audit("expired", job_id=run.job_id, run_id=run.id, ttl_hours=self.ttl.total_seconds() / 3600)
        self._show(
            run,
            f":hourglass: Expired: nobody decided within {self.ttl.total_seconds() / 3600:g} h. "
            f"Run `{command_for(run.action, run.job_id)}` again to make a new request.",
        )
        return True

    # Helpers
    def _pending_or_explain(self, run_id: int, user_id: str) -> Run | None:
        run = self.store.get_run(run_id)
        if run is None:
            return None
        if run.state == RunState.PENDING and run.created_at <= self.clock() - self.ttl:
            self._expire(run)
            run = self.store.get_run(run_id) or run
        if run.state != RunState.PENDING:
            self.flow.tell_user(run.channel_id, user_id, f":information_source: {self._decided_text(run)}")
            return None
        return run

    def _explain_lost(self, run_id: int, user_id: str) -> None:
        run = self.store.get_run(run_id)
        if run is not None:
            self.flow.tell_user(run.channel_id, user_id, f":information_source: {self._decided_text(run)}")

    @staticmethod
    def _decided_text(run: Run) -> str:
        by = f" by <@{run.approver_id}>" if run.approver_id else ""
        noun = words(run.action).noun.lower()
        return {
            RunState.STARTING: f"This request was already approved{by}; the {noun} is starting.",
            RunState.RUNNING: f"This request was already approved{by}; the {noun} is running.",
            RunState.FINISHED: f"This request was approved{by} and its {noun} has finished.",
            RunState.REJECTED: f"This request was rejected{by}.",
            RunState.EXPIRED: "This request expired.",
            RunState.NOT_STARTED: f"This request ended without starting a {noun}.",
        }.get(RunState(run.state), "This request is no longer pending.")

    def _show(self, run: Run, headline: str, note: str = "") -> None:
        if not run.root_ts:
            return
        text, blocks = approval_blocks.decided(
            job_name=run.job_name or run.job_id,
            requester_id=run.requester_id,
            reason=run.reason,
            headline=headline,
            note=note,
            action=run.action,
        )
        try:
            self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=blocks)
        except (SlackApiError, OSError) as error:
            log.warning("updating approval message of run %s failed: %s", run.id, slack_error(error))

    def _finish_unstarted(self, run: Run, approver_id: str, headline: str, next_step: str) -> None:
        self.store.transition(run.id, RunState.STARTING, RunState.NOT_STARTED, finished_at=self.clock(), note=headline)
        self.store.audit("not_started", job_id=run.job_id, run_id=run.id, actor=approver_id, why=headline)
        note = f"Next step: {next_step}" if next_step else "Nothing was started."
        self._show(run, headline, note)
        self.flow.tell_user(run.channel_id, run.requester_id, f"{headline}\n{note}")

    def _back_to_pending(self, run: Run, approver_id: str, error: GraphError) -> None:
        """Graph was unavailable and ``migrate`` did not take effect: the request can be approved again."""
        self.store.transition(
            run.id, RunState.STARTING, RunState.PENDING, approver_id=None, decided_at=None, note=str(error)
        )
        self.store.audit("approval_retryable", job_id=run.job_id, run_id=run.id, actor=approver_id, error=str(error))
        fresh = self.store.get_run(run.id) or run
        try:
            job = self.graph.get_job(run.job_id)
            text, blocks = approval_blocks.approval_request(
                run_id=run.id,
                job=job,
                eligibility=eligibility_for(run.action, job, self.clock()),
                requester_id=run.requester_id,
                reason=run.reason,
                mentions="",
                expires_at=fresh.created_at + self.ttl,
                action=run.action,
            )
            blocks.insert(
                -1,
                {
                    "type": "context",
                    "elements": [
                        {
                            "type": "mrkdwn",
                            "text": f":warning: {user(approver_id)} approved, but Microsoft Graph was unavailable and nothing "
                            "was started. Approve again to retry.",
                        }
                    ],
                },
            )
            self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=blocks)
        except (GraphError, CredentialError, SlackApiError, OSError):
            # The buttons can't be restored: close the request rather than leave it pending and unclickable.
            if not self.store.transition(run.id, RunState.PENDING, RunState.NOT_STARTED, finished_at=self.clock()):
                return  # another approver took it meanwhile: their message stands
            self._show(
                fresh,
                ":warning: Approved, but Microsoft Graph was unavailable and nothing was started. "
                f"Run `{command_for(run.action, run.job_id)}` again to make a new request.",
            )
            self.flow.tell_user(run.channel_id, approver_id, action_refusal_text(run.action, error, run.job_id))
            return
        self.flow.tell_user(
            run.channel_id,
            approver_id,
            action_refusal_text(run.action, error, run.job_id) + "\nThe request is still pending.",
        )
