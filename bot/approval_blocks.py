"""Block Kit for the four-eyes approval request and its outcomes. Pure functions of data."""

from __future__ import annotations

import json
from datetime import datetime

from bot.blocks import context, fields, job_fields, section, verdict_blocks
from bot.jobs import Eligibility, MigrationJob
from bot.mrkdwn import date, escape, plain, safe, truncate, user

APPROVE_ACTION = "approval_approve"
REJECT_ACTION = "approval_reject"
REJECT_CALLBACK = "approval_reject_reason"
REJECT_REASON_BLOCK = "reject_reason"
REJECT_REASON_ACTION = "reject_reason"


def _summary(job: MigrationJob, requester_id: str, reason: str) -> list[dict]:
    pairs = [("Requested by", user(requester_id)), *job_fields(job)[:9]]
    return [
        {"type": "header", "text": plain(f"Approval needed: {truncate(job.name, 120)}", 150)},
        *fields(pairs),
        section(f"*Reason:* {safe(reason, 2900)}"),
    ]


def approval_request(*, run_id: int, job: MigrationJob, eligibility: Eligibility, requester_id: str,
                     reason: str, mentions: str, expires_at: datetime) -> tuple[str, list[dict]]:
    """The request message: job summary, requester, reason, eligibility now, Approve / Reject."""
    text = f"Approval needed: migration of {safe(job.name, 200)} requested by {user(requester_id)}"
    who = f"{mentions}: " if mentions else ""
    buttons = {
        "type": "actions",
        "block_id": f"approval:{run_id}",
        "elements": [
            {
                "type": "button", "action_id": APPROVE_ACTION, "value": str(run_id), "style": "primary",
                "text": plain("Approve and start", 75),
                "confirm": {
                    "title": plain("Start this migration?", 100),
                    "text": {"type": "mrkdwn", "text": truncate(
                        f"This starts the cross-tenant migration of *{escape(job.name)}*. It can't be undone.", 300)},
                    "confirm": plain("Approve and start", 30), "deny": plain("Not yet", 30), "style": "danger",
                },
            },
            {
                "type": "button", "action_id": REJECT_ACTION, "value": str(run_id), "style": "danger",
                "text": plain("Reject", 75),
                "confirm": {
                    "title": plain("Reject this request?", 100),
                    "text": plain("You can give a reason in the next step.", 300),
                    "confirm": plain("Reject", 30), "deny": plain("Keep it", 30),
                },
            },
        ],
    }
    blocks = [
        *_summary(job, requester_id, reason),
        *verdict_blocks(eligibility),
        section(f"{who}a second person must approve this migration. The request expires {date(expires_at)}."),
        buttons,
    ]
    return text, blocks


def decided(*, job_name: str, requester_id: str, reason: str, headline: str, note: str = "") -> tuple[str, list[dict]]:
    """The request message after a decision: buttons gone, who decided what. ``headline`` is mrkdwn."""
    blocks = [
        {"type": "header", "text": plain(f"Migration request: {truncate(job_name, 120)}", 150)},
        *fields([("Requested by", user(requester_id))]),
        section(f"*Reason:* {safe(reason, 2900)}"),
        section(headline),
    ]
    if note:
        blocks.append(context(note))
    return truncate(f"Migration request for {escape(job_name)}: {headline}", 3000), blocks


def reject_modal(*, run_id: int, channel_id: str, message_ts: str) -> dict:
    """A small modal asking for an optional rejection reason."""
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "title": plain("Reject migration", 24),
        "submit": plain("Reject", 24),
        "close": plain("Cancel", 24),
        "private_metadata": json.dumps({"r": run_id, "c": channel_id, "ts": message_ts}),
        "blocks": [{
            "type": "input",
            "block_id": REJECT_REASON_BLOCK,
            "optional": True,
            "label": plain("Why? (optional)", 2000),
            "element": {"type": "plain_text_input", "action_id": REJECT_REASON_ACTION, "multiline": True,
                        "max_length": 500},
        }],
    }
