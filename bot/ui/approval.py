"""Block Kit for the four-eyes approval request and its outcomes. Pure functions of data."""

from __future__ import annotations

import json
from datetime import datetime

from bot.graph.eligibility import Eligibility
from bot.graph.models import MigrationJob
from bot.slack.mrkdwn import date, escape, plain, safe, truncate, user
from bot.ui.modal import context, fields, job_fields, section, verdict_blocks, words

APPROVE_ACTION = "approval_approve"
REJECT_ACTION = "approval_reject"
REJECT_CALLBACK = "approval_reject_reason"
REJECT_REASON_BLOCK = "reject_reason"
REJECT_REASON_ACTION = "reject_reason"


#: Per action: (what is approved, Approve label, confirm title, confirm text with {name}).
_ASK = {
    "migrate": (
        "migration",
        "Approve and start",
        "Start this migration?",
        "This starts the cross-tenant migration of *{name}*. It can't be undone.",
    ),
    "cancel": (
        "cancel",
        "Approve and cancel",
        "Cancel this migration?",
        "This cancels *{name}*: users still syncing stop; users already cut over stay migrated. "
        "A cancelled batch can't be restarted.",
    ),
}


def _ask(action: str) -> tuple[str, str, str, str]:
    return _ASK.get(action, _ASK["migrate"])


_SUMMARY_FIELDS = frozenset(
    {"Job", "Job id", "Status", "Source tenant", "Target tenant", "Workloads", "Cutover not before"}
)


def _summary(job: MigrationJob, requester_id: str, reason: str, action: str = "migrate") -> list[dict]:
    pairs = [
        ("Requested by", user(requester_id)),
        *((label, value) for label, value in job_fields(job) if label in _SUMMARY_FIELDS),
    ]
    head = "Approval needed" if action == "migrate" else f"Approval needed to {action}"
    return [
        {"type": "header", "text": plain(f"{head}: {truncate(job.name, 120)}", 150)},
        *fields(pairs),
        section(f"*Reason:* {safe(reason, 2900)}"),
    ]


def approval_request(
    *,
    run_id: int,
    job: MigrationJob,
    eligibility: Eligibility,
    requester_id: str,
    reason: str,
    mentions: str,
    expires_at: datetime,
    action: str = "migrate",
) -> tuple[str, list[dict]]:
    """The request message: job summary, requester, reason, eligibility now, Approve / Reject. ``action`` is
    ``migrate`` or ``cancel`` (validation needs no approval)."""
    what, approve_label, confirm_title, confirm_text = _ask(action)
    text = f"Approval needed: {what} of {safe(job.name, 200)} requested by {user(requester_id)}"
    who = f"{mentions}: " if mentions else ""
    buttons = {
        "type": "actions",
        "block_id": f"approval:{run_id}",
        "elements": [
            {
                "type": "button",
                "action_id": APPROVE_ACTION,
                "value": str(run_id),
                "style": "primary",
                "text": plain(approve_label, 75),
                "confirm": {
                    "title": plain(confirm_title, 100),
                    "text": {"type": "mrkdwn", "text": truncate(confirm_text.format(name=escape(job.name)), 300)},
                    "confirm": plain(approve_label, 30),
                    "deny": plain("Not yet", 30),
                    "style": "danger",
                },
            },
            {
                "type": "button",
                "action_id": REJECT_ACTION,
                "value": str(run_id),
                "style": "danger",
                "text": plain("Reject", 75),
                "confirm": {
                    "title": plain("Reject this request?", 100),
                    "text": plain("You can give a reason in the next step.", 300),
                    "confirm": plain("Reject", 30),
                    "deny": plain("Keep it", 30),
                },
            },
        ],
    }
    blocks = [
        *_summary(job, requester_id, reason, action),
        *verdict_blocks(eligibility, action),
        section(f"{who}a second person must approve this {what}. The request expires {date(expires_at)}."),
        buttons,
    ]
    return text, blocks


def decided(
    *, job_name: str, requester_id: str, reason: str, headline: str, note: str = "", action: str = "migrate"
) -> tuple[str, list[dict]]:
    """The request message after a decision: buttons gone, who decided what. ``headline`` is mrkdwn."""
    noun = "Migration" if action == "migrate" else words(action).noun
    blocks = [
        {"type": "header", "text": plain(f"{noun} request: {truncate(job_name, 120)}", 150)},
        *fields([("Requested by", user(requester_id))]),
        section(f"*Reason:* {safe(reason, 2900)}"),
        section(headline),
    ]
    if note:
        blocks.append(context(note))
    return truncate(f"{noun} request for {escape(job_name)}: {headline}", 3000), blocks


def reject_modal(*, run_id: int, channel_id: str, message_ts: str) -> dict:
    """A small modal asking for an optional rejection reason."""
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "title": plain("Reject migration", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"r": run_id, "c": channel_id, "ts": message_ts}),
        "blocks": [
            {
                "type": "input",
                "block_id": REJECT_REASON_BLOCK,
                "optional": True,
                "label": plain("Why? (optional)", 2000),
                "element": {
                    "type": "plain_text_input",
                    "action_id": REJECT_REASON_ACTION,
                    "multiline": True,
                    "max_length": 500,
                },
            }
        ],
    }
