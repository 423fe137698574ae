"""Changes inside a batch (remove one user, move the cutover): request, approval, one Graph call, the outcome told.

The approval policy is the cancel's (``REQUIRE_APPROVAL``, approvers, ``ALLOW_SELF_APPROVAL``, ``APPROVAL_TTL_HOURS``;
:class:`bot.workflow.policy.Policy`); who may request, approve or reject is decided by the checkpoint
(:class:`bot.workflow.access.Checkpoint`) before the desk is called. A change of a job the bot follows is asked and
told in that run's thread (broadcast to the channel); otherwise it gets a message of its own in the channel. Each
kind plugs in a :class:`ChangeKind` that describes the change and makes the Graph call.

Like runs, each effect happens once and nothing is left open: a form's submission is claimed by its view id, the
request message carries metadata naming the change (a lost answer is looked up, not reposted), a refused database
write is told to the person, and the leader's sweep (:meth:`ChangeDesk.expire_overdue`) closes requests that never
got a message and settles changes left ``applying`` by re-reading the batch from Graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.change_store import ChangeBusy, ChangeRequest, ChangeState, ChangeStore
from bot.errors import CredentialError, GraphError
from bot.slack.mrkdwn import escape, user
from bot.slack.web import Unanswered, answer_lost, find_tagged, slack_error, tell_user
from bot.store import Run, RunState, Store, utcnow
from bot.ui import changes as ui
from bot.ui.sentences import cant_post_text, not_recorded_text
from bot.workflow.policy import Policy

log = logging.getLogger(__name__)

CHANGE_EVENT = "migrate_bot_change"  # metadata of a change request's message: {run_id: the change's id}
#: A pending request without a message for longer than this lost its post (a crash, a lost answer).
UNPOSTED_REQUEST_GRACE = timedelta(minutes=10)
#: Longer than any one Graph call may take: a change ``applying`` for longer was interrupted (a crash, the database).
APPLYING_GRACE = timedelta(minutes=10)


class Refused(Exception):
    """The change can't be made (the bot's re-check, or Graph's refusal); ``text`` says why, in mrkdwn."""

    def __init__(self, text: str, graph_request_id: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.graph_request_id = graph_request_id


class OutcomeUnknown(Exception):
    """Graph gave no clear answer to the change and the batch could not be read back: it may have been made;
    ``text`` (mrkdwn) says so. The change stays ``applying`` until :meth:`ChangeDesk.settle_applying` re-reads it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


@dataclass(frozen=True)
class Described:
    title: str  # plain words, e.g. "remove a user from wave3_finance"
    what: str  # mrkdwn, escaped: the change in one or two lines
    approve_label: str
    confirm_text: str  # mrkdwn for the confirm dialog
    done: str  # mrkdwn headline once Graph accepted, without the "by" part


class ChangeKind(Protocol):
    """One kind of change (``remove``, ``reschedule``)."""

    def describe(self, change: ChangeRequest) -> Described: ...

    def apply(self, change: ChangeRequest) -> str:
        """Re-check against the live job, make the one Graph call; return Graph's words (escaped) or raise
        :class:`Refused`."""
        ...

    def made(self, change: ChangeRequest) -> bool:
        """Whether the live batch shows the change made (raises GraphError / CredentialError when unreadable)."""
        ...


class ChangeDesk:
    """Records change requests, asks for approval, applies them once, and says so in the job's thread."""

    def __init__(
        self,
        *,
        slack: WebClient,
        store: Store,
        changes: ChangeStore,
        policy: Policy,
        ttl: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.slack = slack
        self.store = store
        self.changes = changes
        self.policy = policy
        self.ttl = ttl
        self.clock = clock
        self.kinds: dict[str, ChangeKind] = {}

    # Request
    def submit(
        self,
        *,
        kind: str,
        job_id: str,
        job_name: str,
        channel_id: str,
        team_id: str | None,
        requester_id: str,
        reason: str,
        target: str,
        target_label: str = "",
        previous: str | None = None,
    ) -> ChangeRequest | None:
        """A confirmed change form (the checkpoint allowed its submission): ask for approval or apply now. A
        database that refuses the write is told to the requester."""
        try:
            return self._submit(
                kind=kind,
                job_id=job_id,
                job_name=job_name,
                channel_id=channel_id,
                team_id=team_id,
                requester_id=requester_id,
                reason=reason,
                target=target,
                target_label=target_label,
                previous=previous,
            )
        except SQLAlchemyError as error:
            log.error("%s request for job %s not recorded: %s", kind, job_id, error)
            self.tell(channel_id, requester_id, not_recorded_text(f"your request for `{escape(job_id)}`"))
            return None

    def claim(self, view_id: str | None, user_id: str, channel_id: str) -> bool:
        """Claim a form's submission (its view id) before acting on it: False for a re-delivery, or when the
        database refused the claim (the person is told)."""
        if view_id is None:
            return True
        try:
            if self.store.claim_submission(view_id, user_id):
                return True
        except SQLAlchemyError as error:
            log.error("submission of view %s not recorded: %s", view_id, error)
            self.tell(channel_id, user_id, not_recorded_text("your request"))
            return False
        log.warning("submission of view %s delivered again: ignored", view_id)
        return False

    def _submit(
        self,
        *,
        kind: str,
        job_id: str,
        job_name: str,
        channel_id: str,
        team_id: str | None,
        requester_id: str,
        reason: str,
        target: str,
        target_label: str,
        previous: str | None,
    ) -> ChangeRequest | None:
        needs_approval = self.policy.require_approval
        thread = self.followed_run(job_id)
        try:
            change = self.changes.create(
                kind=kind,
                job_id=job_id,
                job_name=job_name,
                target=target,
                target_label=target_label,
                previous=previous,
                state=ChangeState.PENDING if needs_approval else ChangeState.APPLYING,
                channel_id=thread.channel_id if thread else channel_id,
                team_id=team_id,
                thread_ts=thread.root_ts if thread else None,
                requester_id=requester_id,
                reason=reason,
                created_at=self.clock(),
            )
        except ChangeBusy as busy:
            self.tell(
                channel_id,
                requester_id,
                f":hourglass: This change already has an open request (by {user(busy.existing.requester_id)}).",
            )
            return None
        self.store.audit(
            f"{kind}_requested",
            job_id=job_id,
            actor=requester_id,
            change_id=change.id,
            target=target,
            label=target_label,
            reason=reason,
            approval_required=needs_approval,
            previous=previous,
        )
        if not needs_approval:
            return self._apply(change, actor=requester_id)
        said = self.kinds[kind].describe(change)
        text, blocks = ui.change_request(
            change_id=change.id,
            title=said.title,
            what=said.what,
            requester_id=requester_id,
            reason=reason,
            mentions=self.policy.approver_mentions(),
            expires_at=change.created_at + self.ttl,
            approve_label=said.approve_label,
            confirm_text=said.confirm_text,
        )
        try:
            posted = self.slack.chat_postMessage(
                channel=change.channel_id,
                text=text,
                blocks=blocks,
                thread_ts=change.thread_ts,
                reply_broadcast=True if change.thread_ts else None,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": CHANGE_EVENT, "event_payload": {"run_id": change.id}},
            )
            ts: str | None = posted["ts"]
        except (SlackApiError, OSError) as error:
            code = slack_error(error)
            try:  # a lost answer (5xx, dropped connection): the request may be in the channel with live buttons
                ts = self._find_request(change) if answer_lost(error) else None
            except Unanswered:  # Slack can't tell now: the expiry sweep looks again (expire_overdue)
                log.warning("change request %s: no clear answer from Slack (%s)", change.id, code)
                return change
            if ts is None:
                self.changes.transition(change.id, ChangeState.PENDING, ChangeState.REFUSED, note=f"slack: {code}")
                self.tell(
                    channel_id,
                    requester_id,
                    cant_post_text(
                        "the approval request", change.channel_id, code, "nothing was requested: try again."
                    ),
                )
                return None
        return self.changes.update(change.id, message_ts=ts)

    # Decide
    def approve(self, change_id: int, user_id: str) -> ChangeRequest | None:
        """One atomic pending → applying step by an approver (the checkpoint's approver rules allowed it), then the
        change is applied once. A database that refuses the write is told to the approver."""
        try:
            return self._approve(change_id, user_id)
        except SQLAlchemyError as error:
            log.error("approval of change %s not recorded: %s", change_id, error)
            self._tell_not_recorded(change_id, user_id, "your approval")
            return None

    def _approve(self, change_id: int, user_id: str) -> ChangeRequest | None:
        change = self._pending_or_explain(change_id, user_id)
        if change is None:
            return None
        if not self.changes.transition(
            change.id, ChangeState.PENDING, ChangeState.APPLYING, approver_id=user_id, decided_at=self.clock()
        ):
            self._explain(change.id, user_id)
            return None
        self.store.audit(f"{change.kind}_approved", job_id=change.job_id, actor=user_id, change_id=change.id)
        return self._apply(self.changes.get(change.id) or change, actor=user_id)

    def approval_refused(self, change_id: int | None, user_id: str, channel_id: str | None, reason: str) -> None:
        """The checkpoint refused an Approve: kept in the change's own audit events and told to the person."""
        change = self.changes.get(change_id) if change_id is not None else None
        if change is not None:
            self.store.audit(
                f"{change.kind}_approval_refused", job_id=change.job_id, actor=user_id, change_id=change.id, why=reason
            )
        self.tell(channel_id or user_id, user_id, f":no_entry: {reason}")

    def reject(self, change_id: int, user_id: str) -> ChangeRequest | None:
        """Reject (an approver) or withdraw (the requester; the checkpoint allowed either): nothing changes in the
        batch."""
        try:
            return self._reject(change_id, user_id)
        except SQLAlchemyError as error:
            log.error("rejection of change %s not recorded: %s", change_id, error)
            self._tell_not_recorded(change_id, user_id, "your rejection")
            return None

    def _reject(self, change_id: int, user_id: str) -> ChangeRequest | None:
        change = self._pending_or_explain(change_id, user_id)
        if change is None:
            return None
        withdraw = user_id == change.requester_id
        if not self.changes.transition(
            change.id, ChangeState.PENDING, ChangeState.REJECTED, approver_id=user_id, decided_at=self.clock()
        ):
            self._explain(change.id, user_id)
            return None
        self.store.audit(
            f"{change.kind}_rejected", job_id=change.job_id, actor=user_id, change_id=change.id, withdrawn=withdraw
        )
        verb = "Withdrawn" if withdraw else "Rejected"
        self._show(change, f":x: {verb} by {user(user_id)}. Nothing was changed.")
        return self.changes.get(change.id)

    def expire_overdue(self) -> int:
        """The leader's sweep: expire pending change requests older than ``APPROVAL_TTL_HOURS`` (buttons go) or
        whose message was never posted, then settle changes left applying (:meth:`settle_applying`); returns how
        many requests expired."""
        now = self.clock()
        expired = 0
        for change in self.changes.pending():
            # A request whose message was never posted (a crash, a lost answer) blocks the change for no one to see;
            # one whose answer was lost may be in the channel after all: look for it first.
            unposted = change.message_ts is None and change.created_at <= now - UNPOSTED_REQUEST_GRACE
            if unposted:
                try:
                    found = self._find_request(change)
                except Unanswered:
                    continue
                if found:
                    change = self.changes.update(change.id, message_ts=found)
                    unposted = False
            if (change.created_at <= now - self.ttl or unposted) and self._expire(change, unposted=unposted):
                expired += 1
        self.settle_applying()
        return expired

    def _expire(self, change: ChangeRequest, *, unposted: bool = False) -> bool:
        if not self.changes.transition(change.id, ChangeState.PENDING, ChangeState.EXPIRED):
            return False
        self.store.audit(f"{change.kind}_expired", job_id=change.job_id, change_id=change.id, unposted=unposted)
        if unposted:
            headline = (
                ":hourglass: Closed: the approval request could not be posted, so nobody could decide. Ask again."
            )
        else:
            headline = (
                f":hourglass: Expired: nobody decided within {self.ttl.total_seconds() / 3600:g} h. "
                "Ask again if it is still needed."
            )
        self._show(change, headline)
        return True

    # Settle
    def settle_applying(self) -> int:
        """Changes left ``applying`` longer than :data:`APPLYING_GRACE` (a crash or a database refusal after the
        Graph call, or no clear answer from Graph): re-read the batch and record done or not done, said in the
        thread. Returns how many were settled; an unreadable batch is looked at again next sweep."""
        cutoff = self.clock() - APPLYING_GRACE
        settled = 0
        for change in self.changes.in_state(ChangeState.APPLYING):
            kind = self.kinds.get(change.kind)
            if kind is None or (change.decided_at or change.created_at) > cutoff:
                continue
            try:
                made = kind.made(change)
            except (GraphError, CredentialError) as error:
                log.info("change %s: batch unreadable (%s); settled next sweep", change.id, error)
                continue
            to = ChangeState.DONE if made else ChangeState.REFUSED
            note = "settled: Graph shows the change made" if made else "settled: Graph shows the change not made"
            if not self.changes.transition(change.id, ChangeState.APPLYING, to, note=note):
                continue
            self.store.audit(
                f"{change.kind}_{'done' if made else 'not_done'}",
                job_id=change.job_id,
                change_id=change.id,
                settled=True,
            )
            by = self._by(change)
            if made:
                headline = (
                    f":white_check_mark: {kind.describe(change).done} ({by}). Confirmed by reading the batch again."
                )
            else:
                headline = (
                    f":warning: Not done ({by}): reading the batch again shows the change was not made. "
                    "Ask again if it is still needed."
                )
            self._show(change, headline)
            settled += 1
        return settled

    # Apply
    def _apply(self, change: ChangeRequest, *, actor: str) -> ChangeRequest:
        kind = self.kinds[change.kind]
        by = self._by(change)
        try:
            graph_said = kind.apply(change)
        except Refused as refused:
            self.changes.transition(change.id, ChangeState.APPLYING, ChangeState.REFUSED, note=refused.text)
            self.store.audit(
                f"{change.kind}_refused",
                job_id=change.job_id,
                actor=actor,
                change_id=change.id,
                graph_request_id=refused.graph_request_id,
                why=refused.text,
            )
            self._show(change, f":no_entry: Not done ({by}): {refused.text}")
            if actor != change.requester_id:
                self.tell(
                    change.channel_id,
                    change.requester_id,
                    f":no_entry: {escape(kind.describe(change).title)}: not done. {refused.text}",
                )
            return self.changes.get(change.id) or change
        except OutcomeUnknown as unknown:  # stays applying: settle_applying reads the batch again
            self.store.audit(f"{change.kind}_outcome_unknown", job_id=change.job_id, actor=actor, change_id=change.id)
            self._show(
                change,
                f":warning: Not confirmed ({by}): {unknown.text} I'll read the batch again in a few minutes and say "
                "here whether it was made.",
            )
            return self.changes.get(change.id) or change
        except (GraphError, CredentialError) as error:  # an unexpected failure: said plainly, nothing assumed
            text = f"Microsoft Graph failed: {escape(str(error))}. Check the batch before asking again."
            self.changes.transition(change.id, ChangeState.APPLYING, ChangeState.REFUSED, note=text)
            self.store.audit(
                f"{change.kind}_failed", job_id=change.job_id, actor=actor, change_id=change.id, error=str(error)
            )
            self._show(change, f":warning: Not done ({by}): {text}")
            return self.changes.get(change.id) or change
        done = kind.describe(change).done
        try:
            self.changes.transition(change.id, ChangeState.APPLYING, ChangeState.DONE, note=graph_said)
            self.store.audit(
                f"{change.kind}_done",
                job_id=change.job_id,
                actor=actor,
                change_id=change.id,
                target=change.target,
                label=change.target_label,
                reason=change.reason,
                requester=change.requester_id,
                approver=change.approver_id,
                graph=graph_said,
            )
        except SQLAlchemyError as error:  # made in Graph: said now, recorded by settle_applying
            log.error("change %s made but not recorded: %s", change.id, error)
            self._show(change, f":white_check_mark: {done} ({by}). {graph_said}".strip())
            self.tell(
                change.channel_id,
                actor,
                f":warning: Microsoft Graph made the change ({escape(kind.describe(change).title)}), but the bot's "
                "database refused to record it. I'll record it as soon as the database takes writes again; the "
                "bot's operator can check with `migrate-bot check`.",
            )
            return change
        self._show(change, f":white_check_mark: {done} ({by}). {graph_said}".strip())
        return self.changes.get(change.id) or change

    # Helpers
    @staticmethod
    def _by(change: ChangeRequest) -> str:
        return f"requested by {user(change.requester_id)}" + (
            f", approved by {user(change.approver_id)}" if change.approver_id else ""
        )

    def _find_request(self, change: ChangeRequest) -> str | None:
        """The ts of the change's request message (by its metadata), None when it is not there. Raises
        :class:`Unanswered` when Slack can't tell now."""
        thread_ts = change.thread_ts
        since = change.created_at.timestamp() - 1

        def fetch(cursor: str | None) -> object:
            if thread_ts is None:
                return self.slack.conversations_history(
                    channel=change.channel_id,
                    oldest=f"{since:.6f}",
                    cursor=cursor,
                    include_all_metadata=True,
                    limit=200,
                )
            return self.slack.conversations_replies(
                channel=change.channel_id, ts=thread_ts, cursor=cursor, include_all_metadata=True, limit=200
            )

        return find_tagged(fetch, event_type=CHANGE_EVENT, run_id=change.id, where=f"<#{change.channel_id}>")

    def _tell_not_recorded(self, change_id: int, user_id: str, what: str) -> None:
        try:
            change = self.changes.get(change_id)
        except SQLAlchemyError:
            change = None
        self.tell(change.channel_id if change is not None else user_id, user_id, not_recorded_text(what))

    def followed_run(self, job_id: str) -> Run | None:
        """The run whose thread belongs to the job: a running one first, else the latest with a root message."""
        runs = [run for run in self.store.runs_for_job(job_id) if run.root_ts and run.action != "cancel"]
        running = [run for run in runs if run.state == RunState.RUNNING]
        return (running or runs or [None])[0]

    def _pending_or_explain(self, change_id: int, user_id: str) -> ChangeRequest | None:
        change = self.changes.get(change_id)
        if change is None:
            return None
        if change.state == ChangeState.PENDING and change.created_at <= self.clock() - self.ttl:
            self._expire(change)
            change = self.changes.get(change_id) or change
        if change.state != ChangeState.PENDING:
            self._explain(change.id, user_id)
            return None
        return change

    def _explain(self, change_id: int, user_id: str) -> None:
        change = self.changes.get(change_id)
        if change is None:
            return
        by = f" by {user(change.approver_id)}" if change.approver_id else ""
        said = {
            ChangeState.APPLYING: f"This change was already approved{by} and is being made.",
            ChangeState.DONE: f"This change was already approved{by} and made.",
            ChangeState.REFUSED: "This change was refused.",
            ChangeState.REJECTED: f"This change was rejected{by}.",
            ChangeState.EXPIRED: "This request expired.",
        }.get(ChangeState(change.state), "This request is no longer pending.")
        self.tell(change.channel_id, user_id, f":information_source: {said}")

    def _show(self, change: ChangeRequest, headline: str) -> None:
        """The outcome: the request message is updated; without one (no approval) a notice is posted in the thread."""
        said = self.kinds[change.kind].describe(change)
        text, blocks = ui.change_outcome(
            title=said.title[:1].upper() + said.title[1:],
            what=said.what,
            requester_id=change.requester_id,
            reason=change.reason,
            headline=headline,
        )
        try:
            if change.message_ts:
                self.slack.chat_update(channel=change.channel_id, ts=change.message_ts, text=text, blocks=blocks)
                return
            posted = self.slack.chat_postMessage(
                channel=change.channel_id,
                text=text,
                blocks=blocks,
                thread_ts=change.thread_ts,
                reply_broadcast=True if change.thread_ts else None,
                unfurl_links=False,
                unfurl_media=False,
            )
        except (SlackApiError, OSError) as error:
            log.warning("change %s: telling the channel failed: %s", change.id, slack_error(error))
            self.tell(change.channel_id, change.requester_id, text)
            return
        try:
            self.changes.update(change.id, message_ts=posted["ts"])
        except SQLAlchemyError as error:
            log.error("change %s: the outcome's message not recorded: %s", change.id, error)

    def tell(self, channel_id: str, user_id: str, text: str) -> None:
        tell_user(self.slack, channel_id=channel_id, user_id=user_id, text=text)
