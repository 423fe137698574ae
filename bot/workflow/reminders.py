"""Reminders in a run's thread: 24 hours and 1 hour before ``completeAfterDateTime`` (with Reschedule and Cancel while
Graph still accepts them), and one day before a passed validation expires for a job not yet migrated.

Each reminder is recorded before it is posted (:class:`bot.reminder_store.ReminderStore`), so it goes out exactly
once across restarts and replicas. Cutover reminders cost no Graph call: the poller keeps each running run's
completeAfterDateTime and status. The validation warning reads the job once, only inside its window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import CredentialError, GraphError
from bot.graph.client import GraphClient
from bot.graph.models import NOT_CANCELLABLE, VALIDATION_TTL, JobStatus
from bot.reminder_store import Reminder, ReminderStore
from bot.slack.web import Unanswered, answer_lost, find_tagged, slack_error
from bot.store import Run, RunState, Store, utcnow
from bot.ui import reminders as ui
from bot.workflow.poller import PERMANENT_SLACK_ERRORS

log = logging.getLogger(__name__)

REMINDER_EVENT = "migrate_bot_reminder"  # metadata: {run_id, key}
#: (key prefix, lead time, words): the later-due reminder first, so a late start posts only the nearest one.
CUTOVER_REMINDERS = (("cutover-1h", timedelta(hours=1), "1 hour"), ("cutover-24h", timedelta(hours=24), "24 hours"))
VALIDATION_WARNING = timedelta(days=1)
SWEEP_SECONDS = 60


class Reminders:
    """One :meth:`sweep` posts every reminder that is due and not yet recorded."""

    def __init__(
        self,
        *,
        store: Store,
        reminders: ReminderStore,
        graph: GraphClient,
        slack: WebClient,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.reminders = reminders
        self.graph = graph
        self.slack = slack
        self.clock = clock

    def sweep(self) -> int:
        """Settle reminders a crash left half-posted, then post what is due; returns how many were posted."""
        self._settle()
        now = self.clock()
        posted = 0
        for run in self.store.runs_in(RunState.RUNNING):
            if run.action == "migrate" and run.root_ts and run.complete_after is not None:
                posted += self._cutover(run, now)
        for run in self._validated(now):
            posted += self._validation(run, now)
        return posted

    # Cutover
    def _cutover(self, run: Run, now: datetime) -> int:
        cutover = run.complete_after
        assert cutover is not None
        status = JobStatus.parse(run.last_status)
        if now >= cutover or status in NOT_CANCELLABLE:
            return 0
        for prefix, lead, words in CUTOVER_REMINDERS:
            if now >= cutover - lead:
                key = f"{prefix}@{cutover.isoformat()}"
                can = status not in NOT_CANCELLABLE
                text, blocks = ui.cutover_reminder(
                    job_name=run.job_name or run.job_id,
                    job_id=run.job_id,
                    cutover=cutover,
                    lead=words,
                    can_move=can,
                    can_cancel=can,
                )
                return self._post(run, key, text, blocks, now)
        return 0

    # Validation expiry
    def _validated(self, now: datetime) -> list[Run]:
        """Validation runs that passed, whose job the bot has not migrated since, inside the warning window."""
        found = []
        for run in self.reminders.passed_validations(now - VALIDATION_TTL - VALIDATION_WARNING):
            if not run.root_ts:
                continue
            passed = run.last_job_update or run.finished_at
            if passed is None or not (passed + VALIDATION_TTL - VALIDATION_WARNING <= now < passed + VALIDATION_TTL):
                continue
            later = [r for r in self.store.runs_for_job(run.job_id) if r.id > run.id and r.action != "cancel"]
            if not later:
                found.append(run)
        return found

    def _validation(self, run: Run, now: datetime) -> int:
        passed = run.last_job_update or run.finished_at
        assert passed is not None
        key = f"validation-expiry@{passed.isoformat()}"
        if any(reminder.key == key for reminder in self.reminders.for_run(run.id)):
            return 0
        try:
            job = self.graph.get_job(run.job_id)
        except (GraphError, CredentialError) as error:
            log.info("validation warning for %s: job unreadable (%s); next sweep", run.job_id, error)
            return 0
        if job.status is not JobStatus.VALIDATE_PASSED:
            return 0  # migrated (or changed) elsewhere: nothing to warn about
        expires = (job.last_updated or passed) + VALIDATION_TTL
        text, blocks = ui.validation_expiry_warning(job_name=job.name, job_id=job.id, expires=expires)
        return self._post(run, key, text, blocks, now)

    # Exactly once
    def _post(self, run: Run, key: str, text: str, blocks: list[dict], now: datetime) -> int:
        reminder = self.reminders.claim(run_id=run.id, job_id=run.job_id, key=key, at=now)
        if reminder is None:
            return 0
        return 1 if self._send(run, reminder, text, blocks) else 0

    def _send(self, run: Run, reminder: Reminder, text: str, blocks: list[dict]) -> bool:
        try:
            posted = self.slack.chat_postMessage(
                channel=run.channel_id,
                thread_ts=run.root_ts,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": REMINDER_EVENT, "event_payload": {"run_id": run.id, "key": reminder.key}},
            )
        except (SlackApiError, OSError) as error:
            if answer_lost(error):
                log.warning("reminder %s of run %s: answer lost (%s); settled next sweep", reminder.key, run.id, error)
            elif slack_error(error) in PERMANENT_SLACK_ERRORS:  # refused for good: not retried every sweep
                log.warning("reminder %s of run %s refused: %s; given up", reminder.key, run.id, slack_error(error))
                self.reminders.give_up(reminder.id)
            else:  # refused for now (rate limit): nothing was posted; try again next sweep
                log.warning("reminder %s of run %s refused: %s", reminder.key, run.id, slack_error(error))
            return False
        self.reminders.sent(reminder.id, posted["ts"])
        return True

    def _settle(self) -> None:
        """Reminders recorded but not known to be posted: look for them in the thread, post when not there."""
        for reminder in self.reminders.unsettled():
            run = self.store.get_run(reminder.run_id)
            if run is None or not run.root_ts:
                continue
            try:
                found = find_tagged(
                    lambda cursor, run=run: self.slack.conversations_replies(
                        channel=run.channel_id, ts=run.root_ts, cursor=cursor, include_all_metadata=True, limit=200
                    ),
                    event_type=REMINDER_EVENT,
                    run_id=run.id,
                    key=reminder.key,
                    where=f"the thread of run {run.id}",
                )
            except Unanswered:
                continue
            if found is not None:
                self.reminders.sent(reminder.id, found)
                continue
            text, blocks = self._rebuild(run, reminder)
            if text:
                self._send(run, reminder, text, blocks)
            else:  # its moment passed: a late reminder would mislead
                log.info("reminder %s of run %s is past its moment: given up", reminder.key, run.id)
                self.reminders.give_up(reminder.id)

    def _rebuild(self, run: Run, reminder: Reminder) -> tuple[str, list[dict]]:
        kind, _, moment = reminder.key.partition("@")
        at = datetime.fromisoformat(moment)
        if kind == "validation-expiry":
            return ui.validation_expiry_warning(
                job_name=run.job_name or run.job_id, job_id=run.job_id, expires=at + VALIDATION_TTL
            )
        words = {prefix: said for prefix, _, said in CUTOVER_REMINDERS}.get(kind)
        if words is None or self.clock() >= at:
            return "", []
        can = JobStatus.parse(run.last_status) not in NOT_CANCELLABLE
        return ui.cutover_reminder(
            job_name=run.job_name or run.job_id, job_id=run.job_id, cutover=at, lead=words, can_move=can, can_cancel=can
        )
