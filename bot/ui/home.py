"""Block Kit for the App Home tab: a dashboard of the batches the bot follows. Pure functions of data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.slack.mrkdwn import date, escape, plain, safe
from bot.store import Run, RunState
from bot.ui.modal import context, section

HOME_LIMIT = 20
ACTIVE = (RunState.PENDING, RunState.STARTING, RunState.RUNNING)


@dataclass(frozen=True)
class Batch:
    """One followed run on the dashboard. ``errors``: users with errors (None: Graph could not say)."""

    run: Run
    where: str  # mrkdwn link to the thread (bot.slack.web.permalink)
    errors: int | None


def status_of(run: Run) -> str:
    if run.state == RunState.PENDING:
        return "waiting for approval"
    if run.state in ACTIVE:
        return run.last_status or run.state
    return run.outcome or run.state.replace("_", " ")


def line(batch: Batch) -> str:
    run = batch.run
    errors = "—" if batch.errors is None else str(batch.errors)
    icon = ":arrows_counterclockwise:" if run.state in ACTIVE else ":checkered_flag:"
    cutover = date(run.complete_after) if run.complete_after else "—"
    return (
        f"{icon} *{safe(run.job_name or run.job_id, 200)}* ({escape(run.action)}) · `{safe(status_of(run), 60)}`\n"
        f"Cutover not before {cutover} · users with errors: {errors} · {batch.where}"
    )


def dashboard(batches: list[Batch], *, total: int, now: datetime) -> dict:
    """The home view: running batches first, then those that ended in the last days."""
    running = [b for b in batches if b.run.state in ACTIVE]
    ended = [b for b in batches if b.run.state not in ACTIVE]
    blocks: list[dict] = [{"type": "header", "text": plain("Migration batches", 150)}]
    if not batches:
        blocks.append(section("The bot follows no batch right now. Start one with `/migrate <jobId>`."))
    for title, items in (("Running", running), ("Ended in the last 7 days", ended)):
        if items:
            blocks.append(section(f"*{title}* ({len(items)})"))
            blocks += [section(line(batch)) for batch in items]
            blocks.append({"type": "divider"})
    if total > len(batches):
        blocks.append(context(f"…and {total - len(batches)} more (older) not shown; `/migrate list` lists them."))
    blocks.append(context(f"Updated {date(now)} · `/migrate users <jobId>` for a batch's users"))
    return {"type": "home", "blocks": blocks[:100]}


def not_allowed(reason: str) -> dict:
    """The home view of a person who may not see migrations."""
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": plain("Migration batches", 150)},
            section(f":no_entry: {escape(reason)}"),
        ],
    }
