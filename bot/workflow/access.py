"""The one authorization checkpoint: who may do what, where, on which job or request.

Every listener path asks :meth:`Checkpoint.decide` before any Graph call or write (see ``handlers/``): the
workspace and enterprise of the person and of the place, the channel allow-list, the user lists and groups of
:class:`bot.workflow.policy.Policy`, the approver rules, and for Approve / Reject that the payload names the run,
channel and message the database recorded. Each decision, allowed or refused, is appended to the audit trail
(``access_granted`` / ``access_refused``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from slack_sdk import WebClient
from sqlalchemy.exc import SQLAlchemyError

from bot.slack.mrkdwn import escape
from bot.slack.web import tell_user
from bot.store import ACCESS_GRANTED, ACCESS_REFUSED, Run, Store
from bot.ui.sentences import not_recorded_text
from bot.workflow.policy import Decision, Policy

log = logging.getLogger(__name__)


class Act(StrEnum):
    """What a person asks to do: each ``/migrate`` subcommand, the modal submission and the approval buttons."""

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
    REMOVE = "remove"  # /migrate remove: take one user out of a batch
    RESCHEDULE = "reschedule"  # /migrate reschedule: move the cutover


#: Acts open to the people who may start migrations (``ALLOWED_SLACK_USERS`` / ``MIGRATORS_USERGROUP``).
MIGRATOR_ACTS = frozenset({Act.MIGRATE, Act.VALIDATE, Act.CANCEL, Act.WHOAMI, Act.SUBMIT, Act.REMOVE, Act.RESCHEDULE})
#: Read-only acts: migrators and approvers.
READER_ACTS = frozenset({Act.STATUS, Act.LIST, Act.USERS})
#: Acts on a recorded approval request (the payload must match the database).
REQUEST_ACTS = frozenset({Act.APPROVE, Act.REJECT})

OTHER_WORKSPACE = "This bot serves another Slack workspace."
OTHER_ORGANISATION = "This bot serves another Slack organisation."
NOT_THIS_REQUEST = "This button does not belong to that request. Use the buttons on the request itself."
NOT_YOURS = "This request is not yours."
GONE = "This request no longer exists."
#: How a decision that could not be recorded is named to the person.
UNRECORDED_WHAT = {"approve": "your approval", "reject": "your rejection"}


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
    message_ts: str | None = None  # Approve / Reject: the message the button sits on
    owner_id: str | None = None  # SUBMIT: who opened the modal


class Checkpoint:
    """Decides every request to act and records the decision. ``team_id`` and ``enterprise_id`` are the
    installation's (from ``auth.test``); None skips that check (a workspace outside Enterprise Grid)."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: Store,
        slack: WebClient,
        team_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> None:
        self.policy = policy
        self.store = store
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
        if ask.what == Act.HELP:
            return Decision(True)
        return self.policy.check_place(None, ask.channel_id)

    def decide(self, ask: Ask) -> Decision:
        """Allowed, or why not; appended to the audit trail either way. May ask Slack for group members."""
        run = self.store.get_run(ask.run_id) if ask.what in REQUEST_ACTS and ask.run_id is not None else None
        decision = self._rules(ask, run)
        self.store.audit(
            ACCESS_GRANTED if decision.allowed else ACCESS_REFUSED,
            job_id=(run.job_id if run is not None else ask.job_id) or "",
            run_id=ask.run_id,
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

    def guard(self, ask: Ask, then: Callable[[], object], *, response_url: str | None = None) -> bool:
        """Decide; when allowed call ``then``, else tell the person why (only them). False when refused,
        also when the decision could not be recorded (nothing is done without a record)."""
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

    def _rules(self, ask: Ask, run: Run | None) -> Decision:
        place = self.screen(ask)
        if not place.allowed or ask.what == Act.HELP:
            return place
        if ask.what in REQUEST_ACTS:
            return self._request_rules(ask, run)
        if ask.what == Act.SUBMIT and ask.owner_id != ask.who:
            migrator = self.policy.may_migrate(ask.who)
            return migrator if not migrator.allowed else Decision(False, NOT_YOURS)
        if ask.what in MIGRATOR_ACTS:
            return self.policy.may_migrate(ask.who)
        if ask.what in READER_ACTS:
            return self.policy.may_read(ask.who)
        return Decision(False, f"`{ask.what}` is not something I know how to authorize.")

    def _request_rules(self, ask: Ask, run: Run | None) -> Decision:
        """Approve / Reject: the payload must name the request as recorded (run, channel, message, workspace);
        the requester may withdraw (Reject) but approves only with ``ALLOW_SELF_APPROVAL``."""
        if run is None:
            return Decision(False, GONE)
        if (
            ask.channel_id != run.channel_id
            or ask.message_ts is None
            or ask.message_ts != run.root_ts
            or (run.team_id and ask.team_id and ask.team_id != run.team_id)
        ):
            return Decision(False, NOT_THIS_REQUEST)
        if ask.what == Act.REJECT and ask.who == run.requester_id:
            return Decision(True)
        return self.policy.may_approve(ask.who, run.requester_id)
