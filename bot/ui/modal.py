"""Block Kit builders for the /migrate modal and the run's root message. Pure functions of data."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.errors import GraphError
from bot.graph.eligibility import Eligibility
from bot.graph.models import NOT_CANCELLABLE, VALIDATION_TTL, JobStatus, MigrationJob
from bot.slack.mrkdwn import date, escape, plain, safe, truncate, user
from bot.ui.sentences import describe_graph_error

CONFIRM_CALLBACK = "migrate_confirm"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
REASON_MAX = 500
SECTION_MAX = 3000
FIELD_MAX = 2000

#: Buttons that open a confirmation modal for a job (``value`` is the job id): the Cancel button on a running
#: migration's root message, and "Validate" where the bot reports a missing, failed or expired validation.
CANCEL_BUTTON_ACTION = "job_open_cancel"
VALIDATE_BUTTON_ACTION = "job_open_validate"
EXAMPLE_JOB = "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"

USAGE = (
    "*Usage:* `/migrate <jobId>` opens the job and asks you to confirm the migration. A job id is the GUID of a "
    "cross-tenant migration job.\n"
    f"• `/migrate <jobId>`: confirm and start a migration (a second person approves it when approval is "
    f"required). Example: `/migrate {EXAMPLE_JOB}`\n"
    f"• `/migrate status <jobId>`: the live job, its users per workload and status, and its thread. "
    f"Example: `/migrate status {EXAMPLE_JOB}`\n"
    "• `/migrate list`: requests and runs waiting for approval or running, and those that ended in the last "
    "7 days, with links to their threads. Example: `/migrate list`\n"
    f"• `/migrate validate <jobId>`: validate the job; moves no data, so no approval is needed. "
    f"Example: `/migrate validate {EXAMPLE_JOB}`\n"
    f"• `/migrate cancel <jobId>`: cancel the job before cutover (approved like a migration). "
    f"Example: `/migrate cancel {EXAMPLE_JOB}`\n"
    f"• `/migrate users <jobId> [failed|all|<user>]`: each user's workloads, statuses and errors, failed first. "
    f"Example: `/migrate users {EXAMPLE_JOB} failed`\n"
    f"• `/migrate remove <jobId> <user>`: take one user out of the batch before the user's cutover (approved like "
    f"a cancel). Example: `/migrate remove {EXAMPLE_JOB} ann@contoso.com`\n"
    f"• `/migrate reschedule <jobId>`: move the cutover time, with date and time pickers in your time zone "
    f"(approved like a cancel). Example: `/migrate reschedule {EXAMPLE_JOB}`\n"
    "• `/migrate whoami`: which admin account and tenant the bot acts as. Example: `/migrate whoami`\n"
    "• `/migrate help`: this list. Example: `/migrate help`"
)


@dataclass(frozen=True)
class ActionWords:
    """How the modal, the verdict and the messages name one action."""

    title: str  # modal title (at most 24 characters)
    can: str  # "This job can be {can} now."
    submit: str
    close: str
    noun: str  # "Migration", "Validation", "Cancellation"
    effect: str  # what the action does, for the confirmation modal (mrkdwn)
    needs_reason: bool = True


ACTIONS: dict[str, ActionWords] = {
    "migrate": ActionWords(
        title="Start migration",
        can="migrated",
        submit="Start migration",
        close="Cancel",
        noun="Migration",
        effect="Migration moves mailboxes, OneDrive and Teams data between tenants and can't be undone.",
    ),
    "validate": ActionWords(
        title="Validate job",
        can="validated",
        submit="Validate",
        close="Close",
        noun="Validation",
        effect=(
            "Validation checks every user and workload of the batch. It moves no data and changes nothing for "
            "the users, so *no approval is needed*. It starts when you confirm; the result, with any invalid "
            "users and their errors, is posted in a thread in this channel."
        ),
        needs_reason=False,
    ),
    "cancel": ActionWords(
        title="Cancel migration",
        can="cancelled",
        submit="Cancel the job",
        close="Keep the job",
        noun="Cancellation",
        effect=(
            "*What cancel does:* users whose data is still only syncing (mailbox not cut over, OneDrive and "
            "Teams not started) are stopped and stay in the source tenant; the batch ends as `cancelled` and "
            "can't be restarted: its users need a new batch.\n"
            "*What it does not undo:* users already cut over stay migrated in the target tenant.\n"
            "*When:* only before cutover begins (completeAfterDateTime). After that Graph refuses the cancel "
            "and the migration continues."
        ),
    ),
}


def words(action: str) -> ActionWords:
    return ACTIONS.get(action, ACTIONS["migrate"])


@dataclass(frozen=True)
class ModalContext:
    """What the modal carries between open and submit (``private_metadata``; never secrets)."""

    channel_id: str
    job_id: str
    user_id: str
    team_id: str | None = None
    action: str = "migrate"

    def encode(self) -> str:
        return json.dumps(
            {"c": self.channel_id, "j": self.job_id, "u": self.user_id, "t": self.team_id, "a": self.action},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> ModalContext:
        data = json.loads(raw or "{}")
        return cls(
            channel_id=data["c"],
            job_id=data["j"],
            user_id=data["u"],
            team_id=data.get("t"),
            action=data.get("a", "migrate"),
        )


def section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}}


def context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(text, SECTION_MAX)}]}


def fields(pairs: list[tuple[str, str]]) -> list[dict]:
    """Sections of at most 10 ``*label*\\nvalue`` fields; values must already be escaped."""
    blocks = []
    for start in range(0, len(pairs), 10):
        chunk = pairs[start : start + 10]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": truncate(f"*{label}*\n{value}", FIELD_MAX)} for label, value in chunk
                ],
            }
        )
    return blocks


def _modal(ctx: ModalContext, title: str, blocks: list[dict], submit: str | None = None) -> dict:
    view = {
        "type": "modal",
        "callback_id": CONFIRM_CALLBACK,
        "title": plain(title, 24),
        "close": plain("Close" if submit is None else words(ctx.action).close, 24),
        "private_metadata": ctx.encode(),
        "blocks": blocks[:100],
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def loading_modal(ctx: ModalContext, external_id: str | None = None) -> dict:
    """Opened at once with the fresh ``trigger_id``, before Graph is asked. ``external_id`` finds the modal again
    when Slack's answer to ``views.open`` is lost."""
    view = _modal(
        ctx,
        words(ctx.action).title,
        [
            section(f":hourglass_flowing_sand: Loading job `{escape(ctx.job_id)}` from Microsoft Graph…"),
        ],
    )
    if external_id:
        view["external_id"] = external_id
    return view


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


def verdict_blocks(eligibility: Eligibility, action: str = "migrate") -> list[dict]:
    can = words(action).can
    if eligibility.allowed:
        blocks = [section(f":white_check_mark: *This job can be {can} now.* {escape(eligibility.reason)}")]
    else:
        text = f":no_entry: *This job can't be {can} now.* {escape(eligibility.reason)}"
        if eligibility.next_step:
            text += f"\n*Next step:* {eligibility.next_step}"
        blocks = [section(text)]
    if eligibility.warning:
        blocks.append(section(f":warning: {escape(eligibility.warning)}"))
    return blocks


def validate_button(job_id: str, label: str = "Validate this job") -> dict:
    """A button that opens the validate confirmation for the job (in place when clicked in a modal)."""
    return {"type": "button", "action_id": VALIDATE_BUTTON_ACTION, "value": job_id, "text": plain(label, 75)}


def cancel_button(job_id: str, label: str = "Cancel migration") -> dict:
    """The Cancel button of a running migration: opens the cancel confirmation (which says what cancel does)."""
    return {
        "type": "button",
        "action_id": CANCEL_BUTTON_ACTION,
        "value": job_id,
        "style": "danger",
        "text": plain(label, 75),
    }


def _offers_validation(job: MigrationJob, eligibility: Eligibility) -> bool:
    """A migrate verdict that asks for a validation: not validated yet, or failed."""
    return not eligibility.allowed and job.status in (JobStatus.SUBMITTED, JobStatus.VALIDATE_FAILED)


def _validation_expired(job: MigrationJob, eligibility: Eligibility) -> bool:
    """Graph offers no revalidation for an expired validatePassed: the way out starts with cancelling the job."""
    age = eligibility.validation_age
    return (
        not eligibility.allowed
        and job.status is JobStatus.VALIDATE_PASSED
        and age is not None
        and (age >= VALIDATION_TTL)
    )


def confirm_modal(
    ctx: ModalContext,
    job: MigrationJob,
    eligibility: Eligibility,
    *,
    needs_approval: bool,
    user_count: int | None = None,
) -> dict:
    """The live job, the verdict for ``ctx.action``, and (when allowed) what it does, a reason and a submit
    button. A migrate verdict that needs a validation offers a button that turns this modal into the validate
    confirmation. Validation never needs approval (it moves no data)."""
    said = words(ctx.action)
    blocks: list[dict] = [{"type": "header", "text": plain(job.display_name or job.id, 150)}]
    blocks += fields(job_fields(job, user_count))
    if job.message:
        blocks.append(context(f"*Graph says:* {safe(job.message, 2500)}"))
    blocks.append({"type": "divider"})
    blocks += verdict_blocks(eligibility, ctx.action)
    if not eligibility.allowed:
        if ctx.action == "migrate" and _offers_validation(job, eligibility):
            blocks.append({"type": "actions", "block_id": "offer_validate", "elements": [validate_button(job.id)]})
        elif _validation_expired(job, eligibility):
            button = cancel_button(job.id, "Cancel this job")
            blocks.append({"type": "actions", "block_id": "offer_cancel", "elements": [button]})
        return _modal(ctx, said.title, blocks)
    needs_approval = needs_approval and ctx.action != "validate"
    follow = {
        "migrate": "It starts when you confirm.",
        "cancel": "The cancel is sent to Graph when you confirm.",
    }.get(ctx.action, "")
    if needs_approval:
        follow = "A second person must approve it in the channel."
    blocks.append(section(said.effect))
    if follow:
        blocks.append(section(follow))
    blocks.append(
        {
            "type": "input",
            "block_id": REASON_BLOCK,
            "optional": not said.needs_reason,
            "label": plain("Reason or change ticket" if said.needs_reason else "Note (optional)", 2000),
            "element": {
                "type": "plain_text_input",
                "action_id": REASON_ACTION,
                "multiline": True,
                "max_length": REASON_MAX,
                "placeholder": plain("e.g. CHG0012345: wave 3 finance cutover", 150),
            },
        }
    )
    return _modal(ctx, said.title, blocks, submit="Request approval" if needs_approval else said.submit)


def error_modal(ctx: ModalContext, title: str, message: str, next_step: str) -> dict:
    """A modal that explains a failure and offers no submit button. ``message`` is escaped here."""
    text = f":x: *{escape(title)}*\n{safe(message, 2000)}"
    if next_step:
        text += f"\n*Next step:* {next_step}"
    return _modal(ctx, words(ctx.action).title, [section(text)])


def graph_error_modal(ctx: ModalContext, error: GraphError) -> dict:
    title, next_step = describe_graph_error(error)
    detail = error.info.message
    if error.correlation():
        detail += f" ({error.correlation()})"
    return error_modal(ctx, title, detail, next_step)


def cancel_offered(action: str, status: str, *, finished: bool = False) -> bool:
    """Whether a run's root message offers Cancel: a migration that has not ended and is not cutting over."""
    return action == "migrate" and not finished and JobStatus.parse(status) not in NOT_CANCELLABLE


def cancel_accepted(
    *, job: MigrationJob, requester_id: str, reason: str, approver_id: str | None = None
) -> tuple[str, list[dict]]:
    """A cancel accepted by Graph for a job whose run is followed in a thread: posted (or updated) there."""
    by = f"requested by {user(requester_id)}" + (f", approved by {user(approver_id)}" if approver_id else "")
    lead = (
        f":no_entry_sign: *Cancel accepted by Microsoft Graph* ({by}): the job is now "
        f"`{safe(job.status_label, 100)}`. Users still syncing stop; users already cut over stay migrated. "
        "The outcome follows in this thread."
    )
    blocks = [section(lead)]
    if reason:
        blocks.append(section(f"*Reason:* {safe(reason, 2900)}"))
    text = f"Cancel of {safe(job.name, 200)} accepted by Graph ({by}); status {safe(job.status_label, 100)}"
    return truncate(text, 3000), blocks
