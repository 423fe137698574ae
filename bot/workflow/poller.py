"""The poller: follows every RUNNING run until its job ends and tells the run's thread what changed.

The runs table is the source of truth and the schedule is derived from it on every pass: one APScheduler
interval job (``coalesce``, ``max_instances=1``) sweeps the RUNNING runs with one query and polls them in groups
of 20, one Graph JSON batch per group (:meth:`~bot.graph.client.GraphClient.get_jobs`), with a few batches in
flight, so a run that starts is picked up by the next sweep (one interval after it started) and a run that
finishes drops out by itself. Killing the process at any moment loses nothing: every decision is
re-made from the database on the next sweep, and every thread post goes through a "pending, then done"
record so it is sent once. (One scheduler job per run cost 3.5x the CPU of bare GETs at 1,000 runs: the
scheduler's per-job overhead and a primary-key read per poll; see bench/README.md.)

One poll of a run costs one Graph read (a twentieth of a ``POST /$batch``); it writes to the database and posts
to Slack only when something changed (status, message or ``lastUpdatedDateTime``).

Exactly-once thread posts: before a reply is posted its intent is written to the run (``reply_pending`` for
status replies and notes, ``final_notice="posting"`` for the final notice) and the reply carries Slack message
metadata naming the run (and the intent's key). When the answer is lost (crash, timeout, 5xx) the next tick
looks for that metadata in the thread (``conversations.replies``, scopes ``channels:history`` and
``groups:history``) instead of posting again. A definite Slack error (``ok: false``, including a 429 that
outlived the client's retry handler) means nothing was posted, so the post is simply retried on a later tick.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from concurrent import futures
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.errors import (
    CredentialError,
    GraphAuthError,
    GraphError,
    GraphErrorInfo,
    GraphNotFound,
    GraphThrottled,
    InvalidJobId,
)
from bot.graph.models import (
    MIGRATION_TERMINAL,
    VALIDATION_TERMINAL,
    JobStatus,
    MigrationJob,
    MigrationTask,
    parse_job_id,
)
from bot.ops.logs import log_context
from bot.slack.web import (
    Unanswered,
    answer_lost,
    find_tagged,
    permalink,
    slack_error,
)
from bot.store import FinalNotice, Run, RunState, Store, utcnow
from bot.ui import thread as status_blocks
from bot.workflow.names import Names, name_failed_users
from bot.workflow.root_post import post_root_once

log = logging.getLogger(__name__)

FINAL_EVENT = "migrate_bot_final"  # metadata of the final notice: {run_id}
UPDATE_EVENT = "migrate_bot_update"  # metadata of every other thread post: {run_id, key}
DM_EVENT = "migrate_bot_dm"  # metadata of the requester's DM at the end: {run_id}
WARN_AFTER_FAILURES = 3
MAX_SKIPPED_TICKS = 8  # backoff cap: at most this many ticks are skipped between attempts
POLL_BATCH = 20  # runs read with one Graph JSON batch (Graph's limit)
#: Batches in flight during a sweep: at Graph's ~200 ms a batch, 1,000 runs take ~2.5 s, 2,000 fit in a 5 s
#: interval; a slow Graph gets at most this many requests at once (the sweep then overruns and coalesces).
BATCHES_IN_FLIGHT = 4
SWEEP_JOB_ID = "poll-sweep"
NOTICE_OUT = (FinalNotice.SENT, FinalNotice.DM)  # the final notice reached the channel or the requester
#: Slack errors that retrying the same post will not fix.
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "thread_not_found",
        "invalid_thread_ts",
        "restricted_action",
        "restricted_action_thread_only",
        "restricted_action_read_only_channel",
        "ekm_access_denied",
        "team_access_not_granted",
        "account_inactive",
        "invalid_auth",
        "token_revoked",
        "no_permission",
        "msg_too_long",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "message_limit_exceeded",
        "missing_scope",
        "not_allowed_token_type",
    }
)
#: chat.update errors that mean the root card can't be edited any more (deleted, too old, no access).
ROOT_GONE_ERRORS = PERMANENT_SLACK_ERRORS | {"message_not_found", "cant_update_message", "edit_window_closed"}
_END_OF_ACTION = {
    "validate": VALIDATION_TERMINAL | {JobStatus.CANCELLED, JobStatus.DELETED},
}


class RunLock:
    """One run's poll lock. Unlike ``threading.Lock`` it can be weakly referenced, so the poller's table of
    locks holds only those in use (it would otherwise grow by one per run, forever)."""

    __slots__ = ("_lock", "__weakref__")

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> RunLock:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


class JobSource(Protocol):
    """What the poller needs from :class:`bot.graph.client.GraphClient`."""

    def get_job(self, job_id: str) -> MigrationJob: ...

    def get_jobs(
        self, job_ids: list[str], *, max_wait: float | None = None
    ) -> dict[str, MigrationJob | GraphError]: ...

    def list_tasks(self, job_id: str) -> list[MigrationTask]: ...


class Poller:
    """Follows RUNNING runs (implements :class:`bot.workflow.flow.RunTracker`).

    ``interval``: seconds between polls of one run (``POLL_INTERVAL_SECONDS``); ``stale_after``: how long
    without any change of ``lastUpdatedDateTime`` before one warning (``STALE_AFTER_HOURS``);
    ``admin_mention``: ``ADMIN_MENTION`` (a user group id ``S…`` or comma-separated user ids);
    ``clock``: now, for elapsed times and staleness; ``scheduler``: an APScheduler 3 scheduler (started here
    unless already running, e.g. paused); ``pool``: the threads a sweep polls on (``BATCHES_IN_FLIGHT`` of them).
    Both come from the composition root (:mod:`bot.factories`); :meth:`shutdown` stops them.
    """

    def __init__(
        self,
        store: Store,
        graph: JobSource,
        slack: WebClient,
        *,
        interval: float,
        stale_after: timedelta,
        admin_mention: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        scheduler: BaseScheduler,
        pool: futures.Executor,
        warn_after_failures: int = WARN_AFTER_FAILURES,
        max_skipped_ticks: int = MAX_SKIPPED_TICKS,
        max_failed_users: int = status_blocks.FAILED_USERS_SHOWN,
        on_sweep: Callable[[float, float], None] | None = None,
        directory: Names | None = None,
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0 seconds")
        self.store = store
        self.graph = graph
        self.slack = slack
        self.interval = float(interval)
        self.stale_after = stale_after
        self.mentions = status_blocks.admin_mentions(admin_mention)
        self.clock = clock
        self.warn_after_failures = warn_after_failures
        self.max_skipped_ticks = max_skipped_ticks
        self.max_failed_users = max_failed_users
        self.on_sweep = on_sweep  # (seconds the sweep took, seconds it started later than its interval)
        self.directory = directory  # UPNs for the final notice's users with errors
        self._last_sweep: float | None = None
        self.is_leader = is_leader  # of several replicas only the leader sweeps (bot.db.leader)
        self.scheduler = scheduler
        # In memory only, and harmless to lose: recomputed or reset on restart.
        self._guard = threading.Lock()
        self._locks: weakref.WeakValueDictionary[int, RunLock] = weakref.WeakValueDictionary()  # held ones only
        self._skip: dict[int, int] = {}  # ticks to skip (backoff after Graph failures)
        self._resumed: set[int] = set()  # runs picked up at start whose first change sums up the downtime
        self._root_stale: set[int] = set()  # runs whose root card update failed: retry on the next tick
        self._not_before: dict[int, float] = {}  # runs that just started: first poll one interval later
        self._pool = pool

    # RunTracker
    def follow(self, run_id: int) -> None:
        """A run that just started: the sweeps poll it from one interval from now."""
        with self._guard:
            self._not_before[run_id] = time.monotonic() + self.interval

    def refresh_root(self, run_id: int) -> None:
        """Redraw the run's root card on its next poll (an update of it failed elsewhere)."""
        with self._guard:
            self._root_stale.add(run_id)

    def start(self) -> None:
        """Resume every RUNNING run from the database and start sweeping every interval."""
        running = self.store.runs_in(RunState.RUNNING)
        with self._guard:
            self._resumed.update(run.id for run in running)
        self.scheduler.add_job(
            self.sweep,
            IntervalTrigger(seconds=self.interval, timezone=UTC),
            id=SWEEP_JOB_ID,
            name="poll running runs",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        if not self.scheduler.running:
            self.scheduler.start()
        log.info("poller started: following %d running run(s) every %g s", len(running), self.interval)

    def shutdown(self, wait: bool = True) -> None:
        """Stop polling; with ``wait``, let polls in flight finish (each is bounded by HTTP timeouts)."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def is_following(self, run_id: int) -> bool:
        """Whether the sweeps poll this run: derived from the database, it is RUNNING."""
        run = self.store.get_run(run_id)
        return run is not None and run.state == RunState.RUNNING

    # Sweeping
    def sweep(self) -> None:
        """One pass: read every RUNNING run with one query, then poll the due runs 20 to a Graph batch, with
        :data:`BATCHES_IN_FLIGHT` batches at a time (leader only)."""
        if not self.is_leader():
            return
        now = time.monotonic()
        lag = 0.0 if self._last_sweep is None else now - self._last_sweep - self.interval
        self._last_sweep = now
        try:
            self._sweep(now)
        finally:
            if self.on_sweep is not None:
                self.on_sweep(time.monotonic() - now, lag)

    def _sweep(self, now: float) -> None:
        runs = self.store.runs_in(RunState.RUNNING)  # which runs are due; each group reads its own again once claimed
        with self._guard:
            due = [run for run in runs if self._not_before.get(run.id, 0.0) <= now]
        groups = [due[start : start + POLL_BATCH] for start in range(0, len(due), POLL_BATCH)]
        # each group in a context of its own: ids bound for its log lines don't linger on the pool's threads
        submitted = [self._pool.submit(contextvars.copy_context().run, self._poll_group, group) for group in groups]
        for done in futures.as_completed(submitted):
            done.result()

    def _poll_group(self, runs: list[Run]) -> None:
        """Poll up to 20 runs with one Graph read, each run's lock held throughout (taken in id order); a run
        another replica holds (an old leader on its way out) is left to it."""
        with ExitStack() as held:
            for run_id in sorted({run.id for run in runs}):
                held.enter_context(self._lock(run_id))
            mine = held.enter_context(self.store.runs_claim(run.id for run in runs))
            ready: list[Run] = []
            # Read again now that the runs are ours: the sweep's snapshot may predate another replica's last poll.
            for run in self.store.get_runs(mine):
                try:
                    with log_context(run_id=run.id, job_id=run.job_id):
                        prepared = self._before_read(run.id, run)
                except Exception:  # never let one run's bug stop the sweep; the next sweep tries again
                    log.exception("poll of run %s failed", run.id)
                    continue
                if prepared is not None:
                    ready.append(prepared)
            if not ready:
                return
            outcomes = self._read(ready)
            for run in ready:
                try:
                    with log_context(run_id=run.id, job_id=run.job_id):
                        self._after_read(run, outcomes[run.id])
                except Exception:
                    log.exception("poll of run %s failed", run.id)

    def _forget(self, run_id: int) -> None:
        with self._guard:
            for memory in (self._skip, self._not_before):
                memory.pop(run_id, None)
            self._resumed.discard(run_id)
            self._root_stale.discard(run_id)

    def _lock(self, run_id: int) -> RunLock:
        """The run's lock: shared while anyone holds or waits for it, forgotten as soon as nobody does."""
        with self._guard:
            lock = self._locks.get(run_id)
            if lock is None:
                lock = self._locks[run_id] = RunLock()
            return lock

    # One poll
    def poll_once(self, run_id: int) -> None:
        """One poll of one run, read fresh from the database (what a sweep does for each run)."""
        with self._lock(run_id):
            run = self.store.get_run(run_id)
            with log_context(run_id=run_id, job_id=run.job_id if run is not None else None):
                run = self._before_read(run_id, run)
                if run is not None:
                    self._after_read(run, self._read([run])[run.id])

    def _before_read(self, run_id: int, run: Run | None) -> Run | None:
        """Everything before Graph is asked (backoff, settling interrupted posts): the run to read, or None.
        Called with the run's lock held."""
        with self._guard:
            skip = self._skip.get(run_id, 0)
            if skip > 0:
                self._skip[run_id] = skip - 1
                return None
        if run is None or run.state != RunState.RUNNING:
            self._forget(run_id)
            return None
        if run.reply_pending:
            run = self._settle_pending_reply(run)
            if run is None:
                return None
        if run.final_notice == FinalNotice.POSTING:
            run = self._settle_pending_final(run)
            if run is None:
                return None
        if run.final_notice in NOTICE_OUT:  # finish what a crash interrupted
            self._complete(run)
            return None
        return run

    def _read(self, runs: list[Run]) -> dict[int, MigrationJob | Exception]:
        """The jobs of ``runs`` with one Graph read (a batch of up to 20): per run id, its job or its error."""
        outcomes: dict[int, MigrationJob | Exception] = {}
        ids: dict[int, str] = {}
        for run in runs:
            try:
                ids[run.id] = parse_job_id(run.job_id)
            except InvalidJobId as error:
                outcomes[run.id] = error
        try:
            # A job throttled for longer than a quarter interval is left to the backoff of later sweeps.
            found: dict[str, MigrationJob | GraphError] | Exception = self.graph.get_jobs(
                list(ids.values()), max_wait=self.interval / 4
            )
        except (GraphError, CredentialError) as error:
            found = error
        except Exception as error:  # a bug or an unexpected answer: treat like an outage, keep the log
            log.exception("reading %d job(s) failed unexpectedly", len(ids))
            found = error
        for run_id, job_id in ids.items():
            if isinstance(found, Exception):
                outcomes[run_id] = found
            else:
                outcomes[run_id] = found.get(job_id) or GraphError(
                    GraphErrorInfo(None, None, f"Graph's answer left out job {job_id}.")
                )
        return outcomes

    def _after_read(self, run: Run, outcome: MigrationJob | Exception) -> None:
        """Post and record only what changed. Called with the run's lock held."""
        if isinstance(outcome, GraphNotFound):
            self._observe(run, None)  # the job vanished: that ends the run too
        elif isinstance(outcome, Exception):
            if not isinstance(outcome, (GraphError, CredentialError)):
                log.error("get job %s for run %s failed unexpectedly: %r", run.job_id, run.id, outcome)
            self._failed(run, outcome)
        else:
            self._observe(run, outcome)

    def _observe(self, run: Run, job: MigrationJob | None) -> None:
        now = self.clock()
        label = job.status_label if job is not None else (run.last_status or "unknown")
        message = (job.message or "") if job is not None else (run.last_message or "")
        run = self._after_success(run, status=label)
        if job is not None and job.last_updated and run.last_job_update and job.last_updated < run.last_job_update:
            return  # older than what we already saw (a lagging read right after the action): ignore it
        root_error = None
        if run.root_ts is None:
            run, root_error = self._post_root(run, label, message, now)
        if job is None or job.status in _END_OF_ACTION.get(run.action, MIGRATION_TERMINAL):
            self._finish(run, job, root_error=root_error)
            return

        if job.complete_after is not None and job.complete_after != run.complete_after:  # moved: the root shows it
            run = self.store.update_run(run.id, complete_after=job.complete_after)
            with self._guard:
                self._root_stale.add(run.id)
        status_seen = label != run.last_status
        message_seen = message != (run.last_message or "")
        update_seen = job.last_updated is not None and job.last_updated != run.last_job_update
        observed: dict[str, Any] = {}
        if status_seen or message_seen or update_seen or run.last_seen_change_at is None:
            observed = dict(last_status=label, last_message=message, last_seen_change_at=now, stale_warned=False)
            if job.last_updated is not None:
                observed["last_job_update"] = job.last_updated
        needs_reply = run.root_ts is not None and (label != run.posted_status or message != (run.posted_message or ""))

        if needs_reply:
            with self._guard:
                offline = run.id in self._resumed
            via = run.last_status if run.last_status not in (run.posted_status, label) else None
            text, blocks = status_blocks.status_reply(
                job_name=run.job_name or run.job_id,
                old_status=run.posted_status,
                new_status=label,
                message=message,
                at=job.last_updated or now,
                offline=offline,
                via=via,
                admin_mention=self.mentions,
            )
            posted = self._thread_post(
                run, text, blocks, done={"posted_status": label, "posted_message": message}, also=observed
            )
            if posted:
                with self._guard:
                    self._resumed.discard(run.id)
                self._update_root(run, label, message, now)
        else:
            with self._guard:
                self._resumed.discard(run.id)
            if observed:
                self.store.update_run(run.id, **observed)
            if run.id in self._root_stale:
                self._update_root(run, label, message, now)
        if status_seen:
            self._audit_change(run, run.last_status, label, message, job)
        if not observed and not needs_reply:
            self._check_stale(run, label, now)

    # Trouble and recovery
    def _failed(self, run: Run, error: Exception) -> None:
        failures = run.poll_failures + 1
        skip = min(2 ** (failures - 1) - 1, self.max_skipped_ticks)
        if isinstance(error, GraphThrottled) and error.retry_after:
            skip = max(skip, min(math.ceil(error.retry_after / self.interval) - 1, self.max_skipped_ticks))
        with self._guard:
            self._skip[run.id] = skip
        auth = isinstance(error, (GraphAuthError, CredentialError))
        log.warning(
            "poll %d of run %s (job %s) failed: %s; next attempt after %d skipped tick(s)",
            failures,
            run.id,
            run.job_id,
            error,
            skip,
        )
        fields: dict[str, Any] = {"poll_failures": failures}
        if failures >= self.warn_after_failures and not run.trouble_warned and run.root_ts:
            text, blocks = status_blocks.trouble_note(
                failures=failures,
                error_text=_describe(error),
                auth=auth,
                status=run.posted_status,
                admin_mention=self.mentions,
            )
            self._thread_post(run, text, blocks, done={"trouble_warned": True}, also=fields)
        else:
            self.store.update_run(run.id, **fields)

    def _after_success(self, run: Run, *, status: str) -> Run:
        """Graph answered: reset the failure count and, when the channel was warned, say it works again."""
        with self._guard:
            self._skip.pop(run.id, None)
        if not run.poll_failures and not run.trouble_warned:
            return run
        if run.trouble_warned and run.root_ts:
            text, blocks = status_blocks.recovered_note(failures=run.poll_failures, status=status)
            self._thread_post(run, text, blocks, done={"trouble_warned": False}, also={"poll_failures": 0})
        elif run.poll_failures:
            self.store.update_run(run.id, poll_failures=0)
        return self.store.get_run(run.id) or run

    def _check_stale(self, run: Run, status: str, now: datetime) -> None:
        if run.stale_warned or run.root_ts is None or run.last_seen_change_at is None:
            return
        since = now - run.last_seen_change_at
        if since < self.stale_after:
            return
        text, blocks = status_blocks.stale_note(
            since=since, last_update=run.last_job_update, status=status, admin_mention=self.mentions
        )
        self._thread_post(run, text, blocks, done={"stale_warned": True})

    # The end of a run
    def _finish(self, run: Run, job: MigrationJob | None, *, root_error: str | None = None) -> None:
        """The job ended (``job`` None: Graph answers 404). Post the final notice once, then complete.
        ``root_error``: why the root message could not be posted just now (then there is no thread)."""
        now = self.clock()
        outcome = job.status_label if job is not None else "vanished"
        message = (job.message or "") if job is not None else ""
        summary: status_blocks.TaskSummary | None = None
        if job is not None:
            try:
                summary = status_blocks.summarize_tasks(self.graph.list_tasks(run.job_id))
                summary = name_failed_users(summary, self.directory, self.max_failed_users)
            except GraphNotFound:
                summary = None  # deleted right after it ended: post what we know
            except (GraphError, CredentialError) as error:
                self._failed(run, error)
                return
            except Exception as error:
                log.exception("list tasks of job %s failed unexpectedly", run.job_id)
                self._failed(run, error)
                return
        text, blocks = status_blocks.final_notice(
            job_name=run.job_name or run.job_id,
            job_id=run.job_id,
            outcome=outcome,
            message=message,
            requester_id=run.requester_id,
            started_at=run.started_at,
            ended_at=now,
            summary=summary,
            run_id=run.id,
            action=run.action,
            max_failed_users=self.max_failed_users,
        )
        summary_line = summary.line() if summary is not None else None
        seen: dict[str, Any] = {"last_status": outcome, "last_message": message}
        if job is not None and job.last_updated is not None:
            seen["last_job_update"] = job.last_updated
        old_status = run.last_status
        if run.root_ts is None:  # no thread to post in: the root could not be posted just now
            if root_error in PERMANENT_SLACK_ERRORS:
                run = self.store.update_run(
                    run.id, final_notice=FinalNotice.DM, outcome=outcome, note=summary_line, **seen
                )
                self._audit_change(run, old_status, outcome, message, job)
                self._complete(run, dm_detail=(text, blocks))
            else:
                self.store.update_run(run.id, **seen)
                self._audit_change(run, old_status, outcome, message, job)
            return
        # Record the intent before posting: a crash after the post is then found, not repeated.
        run = self.store.update_run(
            run.id, final_notice=FinalNotice.POSTING, outcome=outcome, note=summary_line, **seen
        )
        self._audit_change(run, old_status, outcome, message, job)
        try:
            response = self.slack.chat_postMessage(
                channel=run.channel_id,
                thread_ts=run.root_ts,
                reply_broadcast=True,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": FINAL_EVENT, "event_payload": {"run_id": run.id}},
            )
        except SlackApiError as error:
            code = slack_error(error)
            if answer_lost(error):
                log.warning("final notice of run %s: Slack answered %s; checking the thread next tick", run.id, code)
                return
            if code in PERMANENT_SLACK_ERRORS:
                log.warning("final notice of run %s can't be posted (%s): sending it to the requester", run.id, code)
                run = self.store.update_run(run.id, final_notice=FinalNotice.DM)
                self._complete(run, dm_detail=(text, blocks))
                return
            log.warning("final notice of run %s not posted (%s); retrying next tick", run.id, code)
            self.store.update_run(run.id, final_notice=None)
            return
        except Exception as error:  # no answer: it may be in the thread; the next tick looks
            log.warning(
                "final notice of run %s: no answer from Slack (%s); checking the thread next tick", run.id, error
            )
            return
        run = self.store.update_run(
            run.id,
            final_notice=FinalNotice.SENT,
            final_notice_ts=response.get("ts"),
            posted_status=outcome,
            posted_message=message,
        )
        self._complete(run)

    def _audit_change(self, run: Run, old: str | None, new: str, message: str, job: MigrationJob | None) -> None:
        if old != new:
            self.store.audit(
                "status_changed",
                job_id=run.job_id,
                run_id=run.id,
                old=old,
                new=new,
                message=message,
                job_updated=job.last_updated if job is not None else None,
            )

    def _complete(self, run: Run, *, dm_detail: tuple[str, list[dict]] | None = None) -> None:
        """After the final notice: root card, the requester's DM (once), then FINISHED and the ``final_outcome``
        audit event in one transaction (once). A crash anywhere in between is finished by a later tick."""
        outcome = run.outcome or run.last_status or "unknown"
        if run.finished_at is None:  # the end time is fixed once, whatever tick completes the run
            run = self.store.update_run(run.id, finished_at=self.clock())
        finished_at = run.finished_at or self.clock()
        if run.root_ts:
            self._update_root(run, outcome, run.last_message or "", finished_at, finished=True)
        took = finished_at - run.started_at if run.started_at else None
        dm_ok = self._tell_requester(run, outcome, took, dm_detail)
        if dm_ok is None:
            return  # Slack can't tell yet whether the DM went out: the next tick looks
        won = self.store.transition(
            run.id,
            RunState.RUNNING,
            RunState.FINISHED,
            outcome=outcome,
            finished_at=finished_at,
            audit=dict(
                event_name="final_outcome",
                job_id=run.job_id,
                run_id=run.id,
                outcome=outcome,
                duration_seconds=int(took.total_seconds()) if took else None,
                final_notice=run.final_notice,
                final_notice_ts=run.final_notice_ts,
                users=run.note,
                requester_notified=dm_ok,
            ),
        )
        if won:
            log.info("run %s (job %s) finished: %s", run.id, run.job_id, outcome)
        self._forget(run.id)

    def _tell_requester(
        self, run: Run, outcome: str, took: timedelta | None, dm_detail: tuple[str, list[dict]] | None
    ) -> bool | None:
        """DM the requester once: the intent is recorded first and the DM carries metadata naming the run, so after
        a crash or a lost answer it is looked up in the DM (``im:history``) instead of sent again. True when it is
        out, False when Slack refused it, None when that is not known yet."""
        if run.requester_dm in ("sent", "failed"):
            return run.requester_dm == "sent"
        if run.requester_dm == "sending":
            try:
                found = self._find_dm(run)
            except Unanswered:
                return None
            if found:
                self.store.update_run(run.id, requester_dm="sent")
                return True
        channel = run.requester_dm_channel or self._dm_channel(run.requester_id)
        self.store.update_run(run.id, requester_dm="sending", requester_dm_channel=channel)
        where = permalink(self.slack, run.channel_id, run.final_notice_ts or run.root_ts)
        text, blocks = status_blocks.requester_dm(
            job_name=run.job_name or run.job_id,
            outcome=outcome,
            took=status_blocks.duration(took),
            where=where,
            summary_line=run.note,
            action=run.action,
            channel_unavailable=run.channel_id if run.final_notice == FinalNotice.DM else None,
        )
        if dm_detail is not None:
            blocks = (blocks + dm_detail[1])[: status_blocks.MAX_BLOCKS]
        try:
            self.slack.chat_postMessage(
                channel=channel,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": DM_EVENT, "event_payload": {"run_id": run.id}},
            )
        except Exception as error:  # the channel has the outcome; a DM is a courtesy
            if not isinstance(error, SlackApiError) or answer_lost(error):
                log.warning("DM about run %s: no clear answer from Slack (%s); looking next tick", run.id, error)
                return None
            log.warning("DM to %s about run %s failed: %s", run.requester_id, run.id, slack_error(error))
            self.store.update_run(run.id, requester_dm="failed")
            return False
        self.store.update_run(run.id, requester_dm="sent")
        return True

    def _dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with ``user_id`` (``im:write``), where the DM can be looked up again; the user id
        (Slack opens the DM itself, but it can't be read back) when it can't be opened."""
        try:
            return self.slack.conversations_open(users=user_id)["channel"]["id"]
        except (SlackApiError, OSError) as error:
            log.info("conversations.open for %s failed: %s", user_id, slack_error(error))
            return user_id

    def _find_dm(self, run: Run) -> str | None:
        channel = run.requester_dm_channel or run.requester_id
        since = run.created_at.timestamp() - 1
        return find_tagged(
            lambda cursor: self.slack.conversations_history(
                channel=channel, oldest=f"{since:.6f}", cursor=cursor, include_all_metadata=True, limit=200
            ),
            event_type=DM_EVENT,
            run_id=run.id,
            where=f"the DM to {run.requester_id}",
        )

    # Slack: root message and thread posts
    def _post_root(self, run: Run, status: str, message: str, now: datetime) -> tuple[Run, str | None]:
        """The root message could not be posted when the run started: try again, with the current status.
        Returns the run and, when it failed, Slack's error code."""
        text, blocks = self._root(run, status, message, now)
        # The new root shows the current status, so there is nothing older left to reply about.
        run, code, lost = post_root_once(
            self.slack, self.store, run, text, blocks, now=now, posted_status=status, posted_message=message
        )
        if code is not None and not lost:
            log.info("root message of run %s still can't be posted: %s", run.id, code)
        return run, code

    def _update_root(self, run: Run, status: str, message: str, now: datetime, *, finished: bool = False) -> None:
        text, blocks = self._root(run, status, message, now, finished=finished)
        try:
            self.slack.chat_update(channel=run.channel_id, ts=run.root_ts, text=text, blocks=blocks)
        except Exception as error:
            code = slack_error(error)
            log.warning("root card of run %s not updated: %s", run.id, code)
            if not finished and code not in ROOT_GONE_ERRORS:  # transient: try again on the next tick
                with self._guard:
                    self._root_stale.add(run.id)
            return
        with self._guard:
            self._root_stale.discard(run.id)

    def _root(self, run: Run, status: str, message: str, now: datetime, *, finished: bool = False):
        return status_blocks.root_card(
            job_name=run.job_name or run.job_id,
            job_id=run.job_id,
            requester_id=run.requester_id,
            reason=run.reason,
            started_at=run.started_at,
            now=now,
            status=status,
            message=message,
            approver_id=run.approver_id,
            action=run.action,
            finished=finished,
            cutover=run.complete_after,
        )

    def _thread_post(
        self, run: Run, text: str, blocks: list[dict], *, done: dict[str, Any], also: dict[str, Any] | None = None
    ) -> bool:
        """Post one reply in the run's thread at most once; ``done`` is written when it is known to be posted,
        ``also`` with the intent (before posting). True when posted now."""
        key = secrets.token_hex(6)
        pending = json.dumps({"key": key, "done": done}, default=str)
        self.store.update_run(run.id, reply_pending=pending, **(also or {}))
        try:
            self.slack.chat_postMessage(
                channel=run.channel_id,
                thread_ts=run.root_ts,
                text=text,
                blocks=blocks,
                unfurl_links=False,
                unfurl_media=False,
                metadata={"event_type": UPDATE_EVENT, "event_payload": {"run_id": run.id, "key": key}},
            )
        except SlackApiError as error:
            if answer_lost(error):
                log.warning(
                    "reply in run %s: Slack answered %s; checking the thread next tick", run.id, slack_error(error)
                )
                return False
            code = slack_error(error)
            if code in PERMANENT_SLACK_ERRORS:
                # Retrying every tick won't help: drop this one, the next change posts again.
                log.warning("reply in run %s dropped: %s", run.id, code)
                self.store.update_run(run.id, reply_pending=None, **done)
            else:
                log.warning("reply in run %s not posted (%s); retrying next tick", run.id, code)
                self.store.update_run(run.id, reply_pending=None)
            return False
        except Exception as error:
            log.warning("reply in run %s: no answer from Slack (%s); checking the thread next tick", run.id, error)
            return False
        self.store.update_run(run.id, reply_pending=None, **done)
        return True

    def _settle_pending_reply(self, run: Run) -> Run | None:
        """A reply's outcome was not recorded (crash or lost answer): look for it before anything else."""
        try:
            pending = json.loads(run.reply_pending or "{}")
            key, done = pending["key"], dict(pending.get("done") or {})
        except (ValueError, KeyError, TypeError):
            return self.store.update_run(run.id, reply_pending=None)
        try:
            found = self._find_in_thread(run, UPDATE_EVENT, key)
        except Unanswered:
            return None
        if found:
            log.info("reply %s of run %s was posted before the interruption", key, run.id)
            return self.store.update_run(run.id, reply_pending=None, **done)
        return self.store.update_run(run.id, reply_pending=None)

    def _settle_pending_final(self, run: Run) -> Run | None:
        try:
            found = self._find_in_thread(run, FINAL_EVENT, None)
        except Unanswered:
            return None
        if found:
            log.info("final notice of run %s was posted before the interruption (%s)", run.id, found)
            return self.store.update_run(
                run.id,
                final_notice=FinalNotice.SENT,
                final_notice_ts=found,
                posted_status=run.outcome or run.last_status,
                posted_message=run.last_message,
            )
        return self.store.update_run(run.id, final_notice=None)

    def _find_in_thread(self, run: Run, event_type: str, key: str | None) -> str | None:
        """The ts of the bot's reply with this metadata in the run's thread, None when it is not there.
        Raises :class:`Unanswered` when Slack can't tell now (try again next tick)."""
        if run.root_ts is None:
            return None
        return find_tagged(
            lambda cursor: self.slack.conversations_replies(
                channel=run.channel_id, ts=run.root_ts, cursor=cursor, include_all_metadata=True, limit=200
            ),
            event_type=event_type,
            run_id=run.id,
            key=key,
            where=f"the thread of run {run.id}",
        )


def _describe(error: Exception) -> str:
    if isinstance(error, (GraphError, CredentialError)):
        return str(error)
    return f"{type(error).__name__}: {error}"
