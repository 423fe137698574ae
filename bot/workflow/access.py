"""The one authorization checkpoint: who may do what, where, on which job or request.

Every listener path asks :meth:`Checkpoint.decide` before any Graph call or write (see ``handlers/``): the
workspace and enterprise of the person and of the place, the channel allow-list, the user lists and groups of
:class:`bot.workflow.policy.Policy`, the approver rules, and for Approve / Reject (of a run or of a change inside a
batch) that the payload names the request, channel and message the database recorded. Each decision, allowed or
refused, is appended to the audit trail (``access_granted`` / ``access_refused``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from slack_sdk import WebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.change_store import ChangeRequest, ChangeStore
from bot.slack.mrkdwn import escape
from bot.slack.web import tell_user
from bot.store import ACCESS_GRANTED, ACCESS_REFUSED, Run, Store
from bot.ui.sentences import not_recorded_text
from bot.workflow.policy import Decision, Policy

log = logging.getLogger(__name__)


class Act(StrEnum):
    """What a person asks to do: each ``/migrate`` subcommand, button, modal submission and the App Home tab."""

    MIGRATE = "migrate"
    VALIDATE = "validate"
    CANCEL = "cancel"
    STATUS = "status"
    LIST = "list"
    WHOAMI = "whoami"
    HELP = "help"
    SUBMIT = "submit"  # the confirmation modal's submit button
    APPROVE = "approve"
    REJECT = "reject"  # the Reject button and the rejection modal
    USERS = "users"  # /migrate users: a job's users and their errors
    USERS_PAGE = "users_page"  # Previous / Next in the users modal
    REMOVE = "remove"  # /migrate remove and the users modal's Remove button: open the remove form
    REMOVE_SUBMIT = "remove_submit"  # the remove form's submit button
    RESCHEDULE = "reschedule"  # /migrate reschedule and a reminder's Reschedule button: open the form
    RESCHEDULE_SUBMIT = "reschedule_submit"  # the reschedule form's submit button
    CHANGE_APPROVE = "change_approve"  # Approve on a change request (remove a user, move the cutover)
    CHANGE_REJECT = "change_reject"  # Reject (or withdraw) a change request
    HOME = "home"  # the App Home tab (app_home_opened)


#: Acts open to the people who may start migrations (``ALLOWED_SLACK_USERS`` / ``MIGRATORS_USERGROUP``).
MIGRATOR_ACTS = frozenset(
    {
        Act.MIGRATE,
        Act.VALIDATE,
        Act.CANCEL,
        Act.WHOAMI,
        Act.SUBMIT,
        Act.REMOVE,
        Act.REMOVE_SUBMIT,
        Act.RESCHEDULE,
        Act.RESCHEDULE_SUBMIT,
    }
)
#: Read-only acts: migrators and approvers.
READER_ACTS = frozenset({Act.STATUS, Act.LIST, Act.USERS, Act.USERS_PAGE, Act.HOME})
#: Acts on a recorded approval request (the payload must match the database).
REQUEST_ACTS = frozenset({Act.APPROVE, Act.REJECT})
#: Acts on a recorded change request (``change_requests``; the payload must match it as for a run).
CHANGE_ACTS = frozenset({Act.CHANGE_APPROVE, Act.CHANGE_REJECT})
#: Acts by which the requester withdraws their own request (no approver needed).
WITHDRAW_ACTS = frozenset({Act.REJECT, Act.CHANGE_REJECT})
#: Form submissions: only the person who opened the form may submit it (``Ask.owner_id``).
OWNED_ACTS = frozenset({Act.SUBMIT, Act.REMOVE_SUBMIT, Act.RESCHEDULE_SUBMIT})
#: Acts in no channel (the App Home tab): the channel allow-list does not apply, the workspace checks do.
CHANNELLESS_ACTS = frozenset({Act.HOME})

OTHER_WORKSPACE = "This bot serves another Slack workspace."
OTHER_ORGANISATION = "This bot serves another Slack organisation."
NOT_THIS_REQUEST = "This button does not belong to that request. Use the buttons on the request itself."
NOT_YOURS = "This request is not yours."
GONE = "This request no longer exists."
#: How a decision that could not be recorded is named to the person.
UNRECORDED_WHAT = {
    "approve": "your approval",
    "reject": "your rejection",
    "change_approve": "your approval",
    "change_reject": "your rejection",
}


@dataclass(frozen=True)
class Ask:
    """One request to act, with every id taken from the verified payload."""

    who: str
    what: Act
    team_id: str | None = None  # the workspace the payload came from
    user_team_id: str | None = None  # the person's own workspace (differs in Slack Connect channels)
    enterprise_id: str | None = None
    channel_id: str | None = None
    job_id: str | None = None
    run_id: int | None = None  # Approve / Reject: the request the payload names
    change_id: int | None = None  # CHANGE_APPROVE / CHANGE_REJECT: the change request the payload names
    message_ts: str | None = None  # Approve / Reject (of a run or a change): the message the button sits on
    owner_id: str | None = None  # form submissions (OWNED_ACTS): who opened the form
    delivery: str | None = None  # the Slack request's own id, the same on each re-delivery (taken once)


class Checkpoint:
    """Decides every request to act and records the decision. ``team_id`` and ``enterprise_id`` are the
    installation's (from ``auth.test``); None skips that check (a workspace outside Enterprise Grid)."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: Store,
        changes: ChangeStore,
        slack: WebClient,
        team_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> None:
        self.policy = policy
        self.store = store
        self.changes = changes
        self.slack = slack
        self.team_id = team_id
        self.enterprise_id = enterprise_id

    def screen(self, ask: Ask) -> Decision:
        """The checks that need no network and no database (workspace, organisation, channel): a listener may
        answer them in its ack. It still hands the ask to :meth:`decide` (or :meth:`guard`), which records it."""
        if self.team_id and any(team and team != self.team_id for team in (ask.team_id, ask.user_team_id)):
            return Decision(False, OTHER_WORKSPACE)
        if ask.enterprise_id and ask.enterprise_id != self.enterprise_id:
            return Decision(False, OTHER_ORGANISATION)
        if ask.what == Act.HELP or ask.what in CHANNELLESS_ACTS:
            return Decision(True)
        return self.policy.check_place(None, ask.channel_id)

    def decide(self, ask: Ask) -> Decision:
        """Allowed, or why not; appended to the audit trail either way. May ask Slack for group members."""
        run = self.store.get_run(ask.run_id) if ask.what in REQUEST_ACTS and ask.run_id is not None else None
        change = self.changes.get(ask.change_id) if ask.what in CHANGE_ACTS and ask.change_id is not None else None
        decision = self._rules(ask, run, change)
        recorded = run or change
        self.store.audit(
            ACCESS_GRANTED if decision.allowed else ACCESS_REFUSED,
            job_id=(recorded.job_id if recorded is not None else ask.job_id) or "",
            run_id=ask.run_id,
            **({"change_id": ask.change_id} if ask.change_id is not None else {}),
            actor=ask.who,
            what=str(ask.what),
            reason=decision.reason,
            team_id=ask.team_id,
            user_team_id=ask.user_team_id,
            enterprise_id=ask.enterprise_id,
            channel_id=ask.channel_id,
            message_ts=ask.message_ts,
        )
        return decision

    def recheck(self, who: str, what: Act) -> Decision:
        """The person rules for ``what`` alone, not recorded: for the bot's own repeated work for someone the
        checkpoint admitted before (the App Home refresh re-publishes every few seconds; nobody asked)."""
        return self._rules(Ask(who=who, what=what), None, None)

    def guard(
        self,
        ask: Ask,
        then: Callable[[], object],
        *,
        response_url: str | None = None,
        otherwise: Callable[[Decision], object] | None = None,
    ) -> bool:
        """Decide; when allowed call ``then``, else tell the person why (only them), or call ``otherwise`` with
        the refusal where that surface says it another way. False when refused, also when the decision could not
        be recorded (nothing is done without a record). A re-delivery of a request already taken (by this replica
        or another: ``ask.delivery`` is recorded once in the database, after the ack, never before it) changes
        nothing."""
        if ask.delivery is not None and not self._first_delivery(ask.delivery):
            log.info("Slack re-delivered %s: already taken, ignored", ask.delivery)
            return False
        try:
            decision = self.decide(ask)
        except SQLAlchemyError as error:
            log.error("access decision for %s (%s) not recorded: %s", ask.who, ask.what, type(error).__name__)
            what = UNRECORDED_WHAT.get(str(ask.what)) or (
                f"your request for `{escape(ask.job_id)}`" if ask.job_id else "your request"
            )
            text = not_recorded_text(what)
            tell_user(
                self.slack, channel_id=ask.channel_id or ask.who, user_id=ask.who, text=text, response_url=response_url
            )
            return False
        if not decision.allowed:
            if otherwise is not None:
                otherwise(decision)
            else:
                tell_user(
                    self.slack,
                    channel_id=ask.channel_id or ask.who,
                    user_id=ask.who,
                    text=f":no_entry: {decision.reason}",
                    response_url=response_url,
                )
            return False
        then()
        return True

    def _first_delivery(self, key: str) -> bool:
        try:
            return self.store.first_delivery(key)
        except SQLAlchemyError as error:  # the database can't tell: handle it (the claims downstream still hold)
            log.warning("could not record Slack delivery %s (%s): handling it", key, type(error).__name__)
            return True

    def _rules(self, ask: Ask, run: Run | None, change: ChangeRequest | None) -> Decision:
        place = self.screen(ask)
        if not place.allowed or ask.what == Act.HELP:
            return place
        if ask.what in REQUEST_ACTS:
            if run is None:
                return Decision(False, GONE)
            return self._request_rules(ask, run.channel_id, run.root_ts, run.team_id, run.requester_id)
        if ask.what in CHANGE_ACTS:
            if change is None:
                return Decision(False, GONE)
            return self._request_rules(ask, change.channel_id, change.message_ts, change.team_id, change.requester_id)
        if ask.what in OWNED_ACTS and ask.owner_id != ask.who:
            migrator = self.policy.may_migrate(ask.who)
            return migrator if not migrator.allowed else Decision(False, NOT_YOURS)
        if ask.what in MIGRATOR_ACTS:
            return self.policy.may_migrate(ask.who)
        if ask.what in READER_ACTS:
            return self.policy.may_read(ask.who)
        return Decision(False, f"`{ask.what}` is not something I know how to authorize.")

    def _request_rules(
        self, ask: Ask, channel_id: str, message_ts: str | None, team_id: str | None, requester_id: str
    ) -> Decision:
        """Approve / Reject of a run or a change: the payload must name the request as recorded (its id, channel,
        message, workspace); the requester may withdraw (Reject) but approves only with ``ALLOW_SELF_APPROVAL``."""
        if (
            ask.channel_id != channel_id
            or ask.message_ts is None
            or ask.message_ts != message_ts
            or (team_id and ask.team_id and ask.team_id != team_id)
        ):
            return Decision(False, NOT_THIS_REQUEST)
        if ask.what in WITHDRAW_ACTS and ask.who == requester_id:
            return Decision(True)
        return self.policy.may_approve(ask.who, requester_id)
