"""Changes inside a batch (remove one user, move the cutover): request, approval, one Graph call, the outcome told.

The approval policy is the cancel's (``REQUIRE_APPROVAL``, approvers, ``ALLOW_SELF_APPROVAL``, ``APPROVAL_TTL_HOURS``;
:class:`bot.workflow.policy.Policy`); who may request, approve or reject is decided by the checkpoint
(:class:`bot.workflow.access.Checkpoint`) before the desk is called. A change of a job the bot follows is asked and
told in that run's thread (broadcast to the channel); otherwise it gets a message of its own in the channel. Each
kind plugs in a :class:`ChangeKind` that describes the change and makes the Graph call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.change_store import ChangeBusy, ChangeRequest, ChangeState, ChangeStore
from bot.errors import CredentialError, GraphError
from bot.slack.mrkdwn import escape, user
from bot.slack.web import tell_user
from bot.store import Run, RunState, Store, utcnow
from bot.ui import changes as ui
from bot.workflow.policy import Policy

log = logging.getLogger(__name__)


class Refused(Exception):
    """The change can't be made (the bot's re-check, or Graph's refusal); ``text`` says why, in mrkdwn."""

    def __init__(self, text: str, graph_request_id: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.graph_request_id = graph_request_id


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
        """A confirmed change form (the checkpoint allowed its submission): ask for approval or apply now."""
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
            )
        except SlackApiError as error:
            code = error.response.get("error")
            self.changes.transition(change.id, ChangeState.PENDING, ChangeState.REFUSED, note=f"slack: {code}")
            self.tell(
                channel_id,
                requester_id,
                f":warning: I can't post the approval request in <#{change.channel_id}> (`{escape(code)}`). Invite me with `/invite @migrate-bot` and try again.",
            )
            return None
        return self.changes.update(change.id, message_ts=posted["ts"])

    # Decide
    def approve(self, change_id: int, user_id: str) -> ChangeRequest | None:
        """One atomic pending → applying step by an approver (the checkpoint's approver rules allowed it), then the
        change is applied once."""
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
        """Expire pending change requests older than ``APPROVAL_TTL_HOURS`` (buttons go); returns how many."""
        cutoff = self.clock() - self.ttl
        return sum(1 for change in self.changes.pending() if change.created_at <= cutoff and self._expire(change))

    def _expire(self, change: ChangeRequest) -> bool:
        if not self.changes.transition(change.id, ChangeState.PENDING, ChangeState.EXPIRED):
            return False
        self.store.audit(f"{change.kind}_expired", job_id=change.job_id, change_id=change.id)
        self._show(
            change,
            f":hourglass: Expired: nobody decided within {self.ttl.total_seconds() / 3600:g} h. "
            "Ask again if it is still needed.",
        )
        return True

    # Apply
    def _apply(self, change: ChangeRequest, *, actor: str) -> ChangeRequest:
        kind = self.kinds[change.kind]
        by = f"requested by {user(change.requester_id)}" + (
            f", approved by {user(change.approver_id)}" if change.approver_id else ""
        )
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
        except (GraphError, CredentialError) as error:  # an unexpected failure: said plainly, nothing assumed
            text = f"Microsoft Graph failed: {escape(str(error))}. Check the batch before asking again."
            self.changes.transition(change.id, ChangeState.APPLYING, ChangeState.REFUSED, note=text)
            self.store.audit(
                f"{change.kind}_failed", job_id=change.job_id, actor=actor, change_id=change.id, error=str(error)
            )
            self._show(change, f":warning: Not done ({by}): {text}")
            return self.changes.get(change.id) or change
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
        done = kind.describe(change).done
        self._show(change, f":white_check_mark: {done} ({by}). {graph_said}".strip())
        return self.changes.get(change.id) or change

    # Helpers
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
            self.changes.update(change.id, message_ts=posted["ts"])
        except SlackApiError as error:
            log.warning("change %s: telling the channel failed: %s", change.id, error.response.get("error"))
            self.tell(change.channel_id, change.requester_id, text)

    def tell(self, channel_id: str, user_id: str, text: str) -> None:
        tell_user(self.slack, channel_id=channel_id, user_id=user_id, text=text)
