"""Block Kit builders for the /migrate modal and the run's root message. Pure functions of data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime

from bot.errors import GraphError
from bot.jobs import Eligibility, MigrationJob
from bot.mrkdwn import date, escape, plain, safe, truncate, user

CONFIRM_CALLBACK = "migrate_confirm"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
REASON_MAX = 500
SECTION_MAX = 3000
FIELD_MAX = 2000

USAGE = (
    "*Usage:* `/migrate <jobId>` opens the job and asks you to confirm the migration.\n"
    "The job id is the GUID of a cross-tenant migration job, e.g. "
    "`/migrate 5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611`."
)


@dataclass(frozen=True)
class ModalContext:
    """What the modal carries between open and submit (``private_metadata``; never secrets)."""

    channel_id: str
    job_id: str
    user_id: str
    team_id: str | None = None
    action: str = "migrate"

    def encode(self) -> str:
        return json.dumps({"c": self.channel_id, "j": self.job_id, "u": self.user_id, "t": self.team_id,
                           "a": self.action}, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str) -> "ModalContext":
        data = json.loads(raw or "{}")
        return cls(channel_id=data["c"], job_id=data["j"], user_id=data["u"], team_id=data.get("t"),
                   action=data.get("a", "migrate"))


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}]}


def fields(pairs: list[tuple[str, str]]) -> list[dict]:
    """Sections of at most 10 ``*label*\\nvalue`` fields; values must already be escaped."""
    blocks = []
    for start in range(0, len(pairs), 10):
        chunk = pairs[start : start + 10]
        blocks.append({
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": truncate(f"*{label}*\n{value}", FIELD_MAX)} for label, value in chunk],
        })
    return blocks


def _modal(ctx: ModalContext, title: str, blocks: list[dict], submit: str | None = None) -> dict:
    view = {
        "type": "modal",
        "callback_id": CONFIRM_CALLBACK,
        "title": plain(title, 24),
        "close": plain("Close" if submit is None else "Cancel", 24),
        "private_metadata": ctx.encode(),
        "blocks": blocks[:100],
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def loading_modal(ctx: ModalContext) -> dict:
    """Opened at once with the fresh ``trigger_id``, before Graph is asked."""
    return _modal(ctx, "Start migration", [
        section(f":hourglass_flowing_sand: Loading job `{escape(ctx.job_id)}` from Microsoft Graph…"),
    ])


def job_fields(job: MigrationJob, user_count: int | None = None) -> list[tuple[str, str]]:
    """The job's details as escaped ``(label, value)`` pairs."""
    created = f"{safe(job.created_by or 'unknown', 200)} on {date(job.created_at)}"
    workloads = ", ".join(job.workloads) if job.workloads else "all workloads"
    count = user_count if user_count is not None else (len(job.resources) or None)
    resources = f"{count} users" if count is not None else "—"
    return [
        ("Job", safe(job.display_name or "(no name)", 500)),
        ("Job id", f"`{escape(job.id)}`"),
        ("Status", f"`{safe(job.status_label, 100)}`"),
        ("Job type", safe(job.job_type or "—", 100)),
        ("Source tenant", f"`{safe(job.source_tenant_id or '—', 100)}`"),
        ("Target tenant", f"`{safe(job.target_tenant_id or '—', 100)}`"),
        ("Workloads", safe(workloads, 500)),
        ("Resources", safe(resources, 100)),
        ("Cutover not before", date(job.complete_after)),
        ("Created by", created),
        ("Last update", date(job.last_updated)),
    ]


def verdict_blocks(eligibility: Eligibility) -> list[dict]:
    if eligibility.allowed:
        blocks = [section(f":white_check_mark: *This job can be migrated now.* {escape(eligibility.reason)}")]
    else:
        text = f":no_entry: *This job can't be migrated now.* {escape(eligibility.reason)}"
        if eligibility.next_step:
            text += f"\n*Next step:* {eligibility.next_step}"
        blocks = [section(text)]
    if eligibility.warning:
        blocks.append(section(f":warning: {escape(eligibility.warning)}"))
    return blocks


def confirm_modal(ctx: ModalContext, job: MigrationJob, eligibility: Eligibility, *, needs_approval: bool,
                  user_count: int | None = None) -> dict:
    """The live job, the verdict, and (when migratable) a required reason and a submit button."""
    blocks: list[dict] = [{"type": "header", "text": plain(job.display_name or job.id, 150)}]
    blocks += fields(job_fields(job, user_count))
    if job.message:
        blocks.append(context(f"*Graph says:* {safe(job.message, 2500)}"))
    blocks.append({"type": "divider"})
    blocks += verdict_blocks(eligibility)
    if not eligibility.allowed:
        return _modal(ctx, "Start migration", blocks)
    blocks.append(section(
        "Migration moves mailboxes, OneDrive and Teams data between tenants and can't be undone. "
        + ("A second person must approve it in the channel." if needs_approval else "It starts when you confirm.")
    ))
    blocks.append({
        "type": "input",
        "block_id": REASON_BLOCK,
        "label": plain("Reason or change ticket", 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": REASON_ACTION,
            "multiline": True,
            "max_length": REASON_MAX,
            "placeholder": plain("e.g. CHG0012345: wave 3 finance cutover", 150),
        },
    })
    return _modal(ctx, "Start migration", blocks, submit="Request approval" if needs_approval else "Start migration")


def error_modal(ctx: ModalContext, title: str, message: str, next_step: str) -> dict:
    """A modal that explains a failure and offers no submit button. ``message`` is escaped here."""
    text = f":x: *{escape(title)}*\n{safe(message, 2000)}"
    if next_step:
        text += f"\n*Next step:* {next_step}"
    return _modal(ctx, "Start migration", [section(text)])


def graph_error_modal(ctx: ModalContext, error: GraphError) -> dict:
    from bot.messages import describe_graph_error

    title, next_step = describe_graph_error(error)
    detail = error.info.message
    if error.correlation():
        detail += f" ({error.correlation()})"
    return error_modal(ctx, title, detail, next_step)


def root_message(*, job: MigrationJob, requester_id: str, reason: str, started_at: datetime,
                 status: str, approver_id: str | None = None) -> tuple[str, list[dict]]:
    """The run's root message: job name and id, who started it and why, status and start time."""
    name = safe(job.name, 150)
    text = f"Migration started: {name} ({job.id}) by {user(requester_id)}, status {safe(status, 100)}"
    pairs = [
        ("Job id", f"`{escape(job.id)}`"),
        ("Status", f"`{safe(status, 100)}`"),
        ("Started by", user(requester_id)),
        ("Started", date(started_at)),
    ]
    if approver_id:
        pairs.append(("Approved by", user(approver_id)))
    blocks = [
        {"type": "header", "text": plain(f"Migration: {truncate(job.name, 130)}", 150)},
        *fields(pairs),
        section(f"*Reason:* {safe(reason, 2900)}"),
        context("Status updates follow in this thread."),
    ]
    return truncate(text, 3000), blocks
