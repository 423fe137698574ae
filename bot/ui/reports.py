"""Block Kit for the read-only reports: ``/migrate status <jobId>`` and ``/migrate list``. Pure functions of data.

The user counts reuse :mod:`bot.ui.thread` (the same summary the final notice shows). Both reports are
ephemeral (only the person who asked sees them), so they carry no buttons that would act for someone else.
"""

from __future__ import annotations

from datetime import datetime

from bot.graph.eligibility import Eligibility
from bot.graph.models import MigrationJob
from bot.slack.mrkdwn import date, escape, plain, safe, truncate, user
from bot.store import ACTIVE_STATES, Run, RunState
from bot.ui.modal import context, fields, section
from bot.ui.thread import (
    MAX_BLOCKS,
    TaskSummary,
    code,
    duration,
    failed_user_blocks,
    pack_sections,
    workload_blocks,
)

STATUS_FAILED_USERS_SHOWN = 5
LIST_LIMIT = 20
LISTED_DAYS = 7


def _finish(text: str, blocks: list[dict]) -> tuple[str, list[dict]]:
    return truncate(text, 3000), blocks[:MAX_BLOCKS]


def _run_label(run: Run) -> str:
    """``migrate run 12, running, requested by @alice``."""
    state = {"pending": "waiting for approval", "starting": "starting", "running": "running"}.get(
        run.state, f"{run.state.replace('_', ' ')}: {run.outcome}" if run.outcome else run.state.replace("_", " ")
    )
    return f"{escape(run.action)} run {run.id} ({escape(state)}), requested by {user(run.requester_id)}"


def job_status(
    *,
    job: MigrationJob,
    summary: TaskSummary | None,
    tasks_error: str | None,
    run: Run | None,
    where: str | None,
    now: datetime,
    next_steps: list[tuple[str, Eligibility]],
) -> tuple[str, list[dict]]:
    """The live job, its users per workload and status (and the first users with errors), the run the bot
    follows (``where``: mrkdwn link from :func:`bot.slack.web.permalink`) and what can be done now.

    ``next_steps``: ``(command, eligibility)`` for migrate/validate/cancel; the allowed ones are listed.
    """
    pairs = [
        ("Job id", f"`{escape(job.id)}`"),
        ("Status", code(job.status_label)),
        ("Job type", safe(job.job_type or "—", 100)),
        ("Cutover not before", date(job.complete_after)),
        ("Last update", date(job.last_updated)),
        ("Users", escape(summary.line()) if summary is not None else "—"),
    ]
    blocks: list[dict] = [{"type": "header", "text": plain(f"Status: {truncate(job.name, 130)}", 150)}, *fields(pairs)]
    if job.message:
        blocks.append(section(f"*Graph says:* {safe(job.message, 2500)}"))
    if summary is not None and summary.by_workload:
        blocks += workload_blocks(summary)
    elif tasks_error:
        blocks.append(context(f"User details are not available from Graph right now: {safe(tasks_error, 500)}"))
    if summary is not None and summary.failed_users:
        blocks += failed_user_blocks(summary, STATUS_FAILED_USERS_SHOWN)
    if run is not None and where:
        lead = "Followed in" if run.state in ACTIVE_STATES else "Last run:"
        blocks.append(section(f":thread: {lead} {where}: {_run_label(run)}."))
    else:
        blocks.append(context("The bot does not follow a run of this job."))
    allowed = [f"`{escape(command)}`" for command, eligibility in next_steps if eligibility.allowed]
    if allowed:
        blocks.append(context("You can now: " + " · ".join(allowed)))
    blocks.append(context(f"As of {date(now)}"))
    text = f"{escape(job.name)}: {escape(job.status_label)}"
    if summary is not None:
        text += f", {summary.line()}"
    return _finish(text, blocks)


def _run_line(run: Run, where: str, now: datetime) -> str:
    name = safe(run.job_name or run.job_id, 200)
    parts = [f"*{name}*", escape(run.action)]
    if run.state == RunState.PENDING:
        parts.append(f"requested by {user(run.requester_id)} {duration(now - run.created_at)} ago")
    elif run.state in (RunState.STARTING, RunState.RUNNING):
        status = run.last_status or run.state
        parts.append(code(status, 60))
        if run.started_at:
            parts.append(f"running for {duration(now - run.started_at)}")
        parts.append(f"by {user(run.requester_id)}")
    else:
        parts.append(code(run.outcome or run.state, 60))
        if run.state != RunState.FINISHED:
            parts.append(escape(run.state.replace("_", " ")))
        parts.append(f"ended {date(run.finished_at)}")
    if run.parent_run_id is not None:
        parts.append(f"in the thread of run {run.parent_run_id}")
    parts.append(where)
    return "• " + " · ".join(parts)


def run_list(
    *, runs: list[tuple[Run, str]], total: int, now: datetime, days: int = LISTED_DAYS
) -> tuple[str, list[dict]]:
    """Requests waiting for approval, running runs, and runs that ended in the last ``days`` days, each with a
    link to its thread (``(run, where)`` pairs, at most :data:`LIST_LIMIT`); ``total``: how many there are."""
    groups = [
        ("Waiting for approval", [item for item in runs if item[0].state == RunState.PENDING]),
        ("Running", [item for item in runs if item[0].state in (RunState.STARTING, RunState.RUNNING)]),
        (
            f"Ended in the last {days} days",
            [item for item in runs if item[0].state not in ACTIVE_STATES],
        ),
    ]
    blocks: list[dict] = [{"type": "header", "text": plain("Migration runs", 150)}]
    if not runs:
        blocks.append(
            section(f"Nothing is waiting for approval or running, and nothing ended in the last {days} days.")
        )
    for title, items in groups:
        if not items:
            continue
        blocks += pack_sections(f"*{title}* ({len(items)})", [_run_line(run, where, now) for run, where in items])
    if total > len(runs):
        blocks.append(
            context(
                f"…and {total - len(runs)} more (older) not shown: the {len(runs)} most recent are "
                "listed, waiting and running ones first."
            )
        )
    blocks.append(context("`/migrate status <jobId>` for the live job · `/migrate help` for every subcommand"))
    counts = ", ".join(f"{len(items)} {title.split(' in the')[0].lower()}" for title, items in groups)
    return _finish(f"Migration runs: {counts}", blocks)
