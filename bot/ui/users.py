"""Block Kit for ``/migrate users``: a modal with one section per user (workloads, statuses, errors explained),
failed users first, paged with Previous / Next. Pure functions of data."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from bot.graph import tasks as task_rules
from bot.graph.error_codes import SOURCE_URL, explain
from bot.graph.models import MigrationJob, MigrationTask, ServiceStatus
from bot.slack.mrkdwn import date, escape, plain, safe, truncate
from bot.ui.modal import context, section

USERS_CALLBACK = "users_view"
PAGE_ACTION = "users_page"
REMOVE_BUTTON_ACTION = "user_remove_open"
USERS_PER_PAGE = 10
ERRORS_PER_WORKLOAD = 3


@dataclass(frozen=True)
class UsersContext:
    """What the users modal carries between pages (``private_metadata``)."""

    channel_id: str
    job_id: str
    user_id: str
    team_id: str | None = None
    which: str = "all"
    page: int = 0

    def encode(self) -> str:
        return json.dumps(
            {
                "c": self.channel_id,
                "j": self.job_id,
                "u": self.user_id,
                "t": self.team_id,
                "w": self.which,
                "p": self.page,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> UsersContext:
        data = json.loads(raw or "{}")
        return cls(data["c"], data["j"], data["u"], data.get("t"), data.get("w", "all"), int(data.get("p", 0)))

    def at(self, page: int) -> UsersContext:
        return replace(self, page=page)


def _view(ctx: UsersContext, blocks: list[dict]) -> dict:
    return {
        "type": "modal",
        "callback_id": USERS_CALLBACK,
        "title": plain("Users", 24),
        "close": plain("Close", 24),
        "private_metadata": ctx.encode(),
        "blocks": blocks[:100],
    }


def loading(ctx: UsersContext) -> dict:
    return _view(
        ctx, [section(f":hourglass_flowing_sand: Loading the users of `{escape(ctx.job_id)}` from Microsoft Graph…")]
    )


def message_view(ctx: UsersContext, text: str) -> dict:
    """The modal showing one message (an error, or nobody to show). ``text`` is mrkdwn, already escaped."""
    return _view(ctx, [section(text)])


def status_label(status: ServiceStatus, raw: str) -> str:
    return raw if status is ServiceStatus.UNKNOWN_FUTURE_VALUE and raw else status.value


def user_text(task: MigrationTask) -> str:
    """One user: label, then per workload its status, Graph's message and each error with its explanation."""
    icon = ":x:" if task_rules.has_failed(task) else ":bust_in_silhouette:"
    lines = [f"{icon} *{safe(task_rules.label(task), 200)}*"]
    if task_rules.upn(task):
        lines[0] += f" (`{escape(task.id)}`)"
    for state in task.current_status:
        line = f"• *{safe(state.service or 'unknown', 50)}* `{safe(status_label(state.status, state.raw_status), 50)}`"
        if state.message:
            line += f": {safe(state.message, 300)}"
        lines.append(line)
        for error in state.errors[:ERRORS_PER_WORKLOAD]:
            code = error.code or "no code"
            hint = explain(error.code)
            said = f"    `{safe(code, 60)}` {safe(error.message or '', 300)}"
            if hint is not None:
                said += f"\n    _{escape(hint.cause)}_ *Next step:* {escape(hint.next_step)}"
            lines.append(said)
        if len(state.errors) > ERRORS_PER_WORKLOAD:
            lines.append(f"    …and {len(state.errors) - ERRORS_PER_WORKLOAD} more errors")
    return truncate("\n".join(lines), 3000)


def remove_button(task_id: str) -> dict:
    return {
        "type": "button",
        "action_id": REMOVE_BUTTON_ACTION,
        "value": task_id,
        "text": plain("Remove from batch", 75),
    }


def users_page(
    ctx: UsersContext,
    job: MigrationJob,
    shown: list[MigrationTask],
    *,
    total: int,
    failed: int,
    removable: set[str],
    now: datetime,
) -> dict:
    """One page of ``shown`` (already filtered and ordered failed first). ``removable``: users Graph would still
    take out of the batch (they get a Remove button)."""
    pages = max(1, -(-len(shown) // USERS_PER_PAGE))
    page = min(max(ctx.page, 0), pages - 1)
    ctx = ctx.at(page)
    which = {"failed": "users with failures", "all": "all users, failed first"}.get(ctx.which, "one user")
    blocks: list[dict] = [
        {"type": "header", "text": plain(f"Users: {truncate(job.name, 130)}", 150)},
        context(
            f"Job `{escape(job.id)}` · status `{safe(job.status_label, 60)}` · cutover not before "
            f"{date(job.complete_after)} · {total} users, {failed} with failures · showing {which} "
            f"({len(shown)}) · page {page + 1} of {pages}"
        ),
    ]
    start = page * USERS_PER_PAGE
    for task in shown[start : start + USERS_PER_PAGE]:
        block = section(user_text(task))
        if task.id in removable:
            block["accessory"] = remove_button(task.id)
        blocks.append(block)
    if not shown:
        blocks.append(
            section(
                "Nobody to show: " + ("no user has failures." if ctx.which == "failed" else "no such user in this job.")
            )
        )
    nav = []
    if page > 0:
        nav.append(
            {
                "type": "button",
                "action_id": f"{PAGE_ACTION}_prev",
                "value": str(page - 1),
                "text": plain("Previous", 75),
            }
        )
    if page < pages - 1:
        nav.append(
            {"type": "button", "action_id": f"{PAGE_ACTION}_next", "value": str(page + 1), "text": plain("Next", 75)}
        )
    if nav:
        blocks.append({"type": "actions", "block_id": "users_nav", "elements": nav})
    blocks.append(
        context(
            f"Error codes explained from Microsoft's <{SOURCE_URL}|orchestrated migration troubleshooting>; other codes as Graph sent them. Read {date(now)}."
        )
    )
    return _view(ctx, blocks)
