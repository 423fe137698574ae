"""Move the cutover: ``/migrate reschedule <jobId>`` opens a form with Slack's date and time pickers in the
requester's time zone (``users.info`` ``tz``); the change follows the cancel's approval policy
(:class:`bot.workflow.changes.ChangeDesk`) and is one ``PATCH`` of ``completeAfterDateTime``.

Graph accepts the PATCH until cutover begins: not from cuttingOver or an ended job, and for a migration that is
syncing only until its completeAfterDateTime passes; a date in the past is refused (the reference's strict reading).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Executor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.change_store import ChangeRequest
from bot.errors import CredentialError, GraphBadRequest, GraphConflict, GraphError
from bot.graph.client import GraphClient
from bot.graph.eligibility import Eligibility
from bot.graph.models import MIGRATION_TERMINAL, JobStatus, MigrationJob
from bot.slack.mrkdwn import date, escape, safe
from bot.slack.web import slack_error, tell_user
from bot.store import utcnow
from bot.ui import reschedule as ui
from bot.ui.sentences import refusal_text
from bot.workflow.changes import ChangeDesk, Described, Refused
from bot.workflow.policy import Policy
from bot.workflow.windows import open_window

log = logging.getLogger(__name__)

NOT_MOVABLE = MIGRATION_TERMINAL | frozenset(
    {
        JobStatus.CUTTING_OVER,
        JobStatus.PENDING_CANCEL,
        JobStatus.PENDING_DELETE,
        JobStatus.APPROVED,
        JobStatus.ADMIN_ACTION_REQUIRED,
        JobStatus.UNKNOWN_FUTURE_VALUE,
    }
)


def reschedule_eligibility(job: MigrationJob, now: datetime) -> Eligibility:
    """Whether Graph will accept a new completeAfterDateTime now."""
    if job.status is JobStatus.CUTTING_OVER:
        return Eligibility(
            False,
            "Cutover has begun: users are being switched to the target tenant and the cutover time can no longer "
            "be moved.",
            f"Follow it with `/migrate status {job.id}`.",
        )
    if job.status in NOT_MOVABLE:
        return Eligibility(False, f"The job is `{job.status_label}`: Graph no longer accepts a new cutover time.")
    if job.status in (JobStatus.PROCESSING, JobStatus.IN_PROGRESS) and job.complete_after and job.complete_after <= now:
        return Eligibility(
            False,
            "The cutover time has passed: cutover can start at any moment and Graph no longer accepts a new date.",
            f"Follow it with `/migrate status {job.id}`.",
        )
    return Eligibility(True, "The cutover time can be moved (later delays cutover; earlier brings it forward).")


def zone(name: str | None) -> ZoneInfo:
    """The person's time zone (``users.info`` ``tz``); UTC when Slack gives none or an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def picked(selected_date: str, selected_time: str, tz: str) -> datetime | None:
    """The UTC moment of a date picker's ``YYYY-MM-DD`` and a time picker's ``HH:mm`` in ``tz``; None if unreadable."""
    try:
        local = datetime.strptime(f"{selected_date} {selected_time}", "%Y-%m-%d %H:%M")
    except ValueError:
        return None
    return local.replace(tzinfo=zone(tz)).astimezone(UTC)


class Reschedules:
    """The reschedule form and the :class:`~bot.workflow.changes.ChangeKind` ``reschedule``."""

    kind = "reschedule"

    def __init__(
        self,
        *,
        graph: GraphClient,
        slack: WebClient,
        policy: Policy,
        desk: ChangeDesk,
        work: Executor,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.graph = graph
        self.slack = slack
        self.policy = policy
        self.desk = desk
        self.work = work
        self.clock = clock
        desk.kinds[self.kind] = self

    def open_form(self, meta: ui.RescheduleForm, trigger_id: str, *, response_url: str | None = None) -> None:
        """Right after the ack and the checkpoint (prompt pool): open the loading form, fill it in the worker pool."""
        opened = open_window(
            self.slack,
            ui.loading(meta),
            trigger_id=trigger_id,
            channel_id=meta.channel_id,
            user_id=meta.user_id,
            response_url=response_url,
        )
        if opened is not None:
            self.work.submit(self.fill_form, meta, opened["id"], opened.get("hash"))

    def fill_form(self, meta: ui.RescheduleForm, view_id: str, view_hash: str | None) -> None:
        tz = self._tz(meta.user_id)
        try:
            job = self.graph.get_job(meta.job_id)
        except (GraphError, CredentialError) as error:
            view = ui.message(meta, refusal_text(error, "read the job"))
        else:
            meta = ui.RescheduleForm(
                meta.channel_id, meta.job_id, meta.user_id, meta.team_id, tz, _iso(job.complete_after)
            )
            view = ui.form(
                meta,
                job,
                reschedule_eligibility(job, self.clock()),
                zone(tz),
                needs_approval=self.policy.require_approval,
            )
        try:
            self.slack.views_update(view_id=view_id, hash=view_hash, view=view)
        except SlackApiError as error:
            log.info("views.update %s (reschedule form) skipped: %s", view_id, error.response.get("error"))

    def _tz(self, user_id: str) -> str:
        try:
            return str((self.slack.users_info(user=user_id).get("user") or {}).get("tz") or "UTC")
        except (SlackApiError, OSError) as error:
            log.info("users.info %s failed (%s): times in UTC", user_id, slack_error(error))
            return "UTC"

    def check(self, meta: ui.RescheduleForm, when: datetime | None) -> str | None:
        """An inline error for the picked moment, or None (cheap: no network, for the submission's ack)."""
        if when is None:
            return "Pick a date and a time."
        if when <= self.clock():
            return "Pick a time in the future: Graph refuses a cutover time in the past."
        if meta.previous and _iso(when) == meta.previous:
            return "That is the current cutover time; pick another."
        return None

    def confirm(
        self, meta: ui.RescheduleForm, user_id: str, when: datetime, reason: str, view_id: str | None = None
    ) -> ChangeRequest | None:
        """The form was submitted by its owner (the checkpoint saw to that): the change goes to the desk. The
        submission (``view_id``) is acted on once."""
        if not self.desk.claim(view_id, user_id, meta.channel_id):
            return None
        try:
            job = self.graph.get_job(meta.job_id)
        except (GraphError, CredentialError) as error:
            tell_user(
                self.slack,
                channel_id=meta.channel_id,
                user_id=user_id,
                text=refusal_text(error, "request the new cutover time"),
            )
            return None
        return self.desk.submit(
            kind=self.kind,
            job_id=meta.job_id,
            job_name=job.name,
            channel_id=meta.channel_id,
            team_id=meta.team_id,
            requester_id=user_id,
            reason=reason,
            target=_iso(when) or "",
            target_label=meta.tz,
            previous=_iso(job.complete_after),
        )

    # ChangeKind
    def describe(self, change: ChangeRequest) -> Described:
        new = _parse(change.target)
        old = _parse(change.previous)
        name = safe(change.job_name or change.job_id, 200)
        what = f":calendar: *Move the cutover* of *{name}* (`{escape(change.job_id)}`)\n*From:* {date(old)}\n*To:* {date(new)}"
        if old and new:
            shift = new - old
            hours = shift.total_seconds() / 3600
            what += f" ({'later' if hours > 0 else 'earlier'} by {abs(hours):.1f} h)"
        return Described(
            title=f"move the cutover of {change.job_name or change.job_id}",
            what=what,
            approve_label="Approve new time",
            confirm_text=f"Cutover of *{name}* will not start before {date(new)}.",
            done=f"*Cutover moved* to {date(new)}",
        )

    def apply(self, change: ChangeRequest) -> str:
        new = _parse(change.target)
        try:
            job = self.graph.get_job(change.job_id)
        except (GraphError, CredentialError) as error:
            raise Refused(refusal_text(error, "re-read the job before moving the cutover")) from error
        verdict = reschedule_eligibility(job, self.clock())
        if not verdict.allowed:
            raise Refused(escape(verdict.reason))
        if new is None or new <= self.clock():
            raise Refused("The new cutover time has passed meanwhile; pick a later one.")
        try:
            self.graph.update_job(change.job_id, complete_after=new)
        except GraphConflict as error:
            raise Refused(
                "Microsoft Graph refused (409): the cutover time can no longer be changed (cutover has begun or the "
                f"date has passed). Graph said: {safe(error.info.message, 500)}",
                error.request_id,
            ) from error
        except GraphBadRequest as error:
            raise Refused(
                f"Microsoft Graph refused the date (400): {safe(error.info.message, 500)}", error.request_id
            ) from error
        return "Graph accepted the new completeAfterDateTime."

    def made(self, change: ChangeRequest) -> bool:
        """The job's completeAfterDateTime is the requested one."""
        job = self.graph.get_job(change.job_id)
        return job.complete_after is not None and _iso(job.complete_after) == change.target


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


__all__ = ["Reschedules", "reschedule_eligibility", "picked", "zone"]
