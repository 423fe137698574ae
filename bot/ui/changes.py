"""Block Kit for changes inside a batch (remove one user, move the cutover): the confirmation form, the approval
request with Approve / Reject, and the message after the outcome. Pure functions of data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from bot.graph.eligibility import Eligibility
from bot.graph.models import MigrationJob, MigrationTask
from bot.slack.mrkdwn import date, escape, plain, safe, truncate, user
from bot.ui.modal import REASON_MAX, context, fields, section, verdict_blocks
from bot.ui.users import user_text

REMOVE_CALLBACK = "user_remove_confirm"
CHANGE_APPROVE_ACTION = "change_approve"
CHANGE_REJECT_ACTION = "change_reject"
REASON_BLOCK = "change_reason"
REASON_ACTION = "change_reason"

REMOVE_EFFECT = (
    "*What removing does:* this user is taken out of the batch (Graph's task cancel); the other users continue. "
    "The user can't be added back to this batch, and any mailbox sync already done is discarded.\n"
    "*When:* only before the user's cutover (mailbox not cut over, OneDrive and Teams not started) and before "
    "completeAfterDateTime once the batch syncs. After that Graph answers 409 and the user's migration continues."
)


@dataclass(frozen=True)
class ChangeForm:
    """What a change form carries to its submission (``private_metadata``)."""

    channel_id: str
    job_id: str
    user_id: str
    team_id: str | None = None
    who: str = ""  # what the person typed (remove) until the user is found
    task_id: str = ""
    label: str = ""

    def encode(self) -> str:
        return json.dumps(
            {
                "c": self.channel_id,
                "j": self.job_id,
                "u": self.user_id,
                "t": self.team_id,
                "w": self.who,
                "k": self.task_id,
                "l": self.label,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> ChangeForm:
        data = json.loads(raw or "{}")
        return cls(
            data["c"], data["j"], data["u"], data.get("t"), data.get("w", ""), data.get("k", ""), data.get("l", "")
        )


def _form(meta: ChangeForm, callback: str, title: str, blocks: list[dict], submit: str | None = None) -> dict:
    view = {
        "type": "modal",
        "callback_id": callback,
        "title": plain(title, 24),
        "close": plain("Close", 24),
        "private_metadata": meta.encode(),
        "blocks": blocks[:100],
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def reason_input(label: str = "Reason or change ticket") -> dict:
    return {
        "type": "input",
        "block_id": REASON_BLOCK,
        "label": plain(label, 2000),
        "element": {
            "type": "plain_text_input",
            "action_id": REASON_ACTION,
            "multiline": True,
            "max_length": REASON_MAX,
            "placeholder": plain("e.g. CHG0012345: leaver, not migrating", 150),
        },
    }


def remove_loading(meta: ChangeForm) -> dict:
    return _form(
        meta,
        REMOVE_CALLBACK,
        "Remove a user",
        [section(":hourglass_flowing_sand: Loading the user from Microsoft Graph…")],
    )


def remove_message(meta: ChangeForm, text: str) -> dict:
    """The remove form showing only a message (``text`` is mrkdwn, already escaped); no submit."""
    return _form(meta, REMOVE_CALLBACK, "Remove a user", [section(text)])


def remove_form(
    meta: ChangeForm, job: MigrationJob, task: MigrationTask, eligibility: Eligibility, *, needs_approval: bool
) -> dict:
    """The user, the verdict, what removing does, a required reason, and (when allowed) a submit button."""
    blocks: list[dict] = [
        {"type": "header", "text": plain(f"Remove a user from {truncate(job.name, 100)}", 150)},
        context(
            f"Job `{escape(job.id)}` · status `{safe(job.status_label, 60)}` · cutover not before {date(job.complete_after)}"
        ),
        section(user_text(task)),
        {"type": "divider"},
        *_verdict(eligibility, "removed"),
    ]
    if not eligibility.allowed:
        return _form(meta, REMOVE_CALLBACK, "Remove a user", blocks)
    blocks.append(section(REMOVE_EFFECT))
    if needs_approval:
        blocks.append(section("A second person must approve it in the channel."))
    blocks.append(reason_input())
    return _form(
        meta, REMOVE_CALLBACK, "Remove a user", blocks, "Request approval" if needs_approval else "Remove user"
    )


def _verdict(eligibility: Eligibility, can: str) -> list[dict]:
    blocks = verdict_blocks(eligibility)
    # verdict_blocks speaks of "This job can be migrated"; a change speaks of its own object.
    for block in blocks:
        text = block["text"]["text"]
        block["text"]["text"] = text.replace("This job can be migrated", f"This can be {can}").replace(
            "This job can't be migrated", f"This can't be {can}"
        )
    return blocks


def change_request(
    *,
    change_id: int,
    title: str,
    what: str,
    requester_id: str,
    reason: str,
    mentions: str,
    expires_at: datetime,
    approve_label: str,
    confirm_text: str,
) -> tuple[str, list[dict]]:
    """The approval request for a change: what changes (mrkdwn, escaped), who asks and why, Approve / Reject."""
    who = f"{mentions}: " if mentions else ""
    blocks = [
        {"type": "header", "text": plain(f"Approval needed: {truncate(title, 120)}", 150)},
        section(what),
        *fields([("Requested by", user(requester_id))]),
        section(f"*Reason:* {safe(reason, 2900)}"),
        section(f"{who}a second person must approve this change. The request expires {date(expires_at)}."),
        {
            "type": "actions",
            "block_id": f"change:{change_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": CHANGE_APPROVE_ACTION,
                    "value": str(change_id),
                    "style": "primary",
                    "text": plain(approve_label, 75),
                    "confirm": {
                        "title": plain("Approve this change?", 100),
                        "text": {"type": "mrkdwn", "text": truncate(confirm_text, 300)},
                        "confirm": plain(approve_label, 30),
                        "deny": plain("Not yet", 30),
                        "style": "danger",
                    },
                },
                {
                    "type": "button",
                    "action_id": CHANGE_REJECT_ACTION,
                    "value": str(change_id),
                    "style": "danger",
                    "text": plain("Reject", 75),
                    "confirm": {
                        "title": plain("Reject this change?", 100),
                        "text": plain("Nothing is changed in the batch.", 300),
                        "confirm": plain("Reject", 30),
                        "deny": plain("Keep it", 30),
                    },
                },
            ],
        },
    ]
    text = f"Approval needed: {safe(title, 200)}, requested by {user(requester_id)}"
    return text, blocks


def change_outcome(*, title: str, what: str, requester_id: str, reason: str, headline: str) -> tuple[str, list[dict]]:
    """The request (or notice) after the outcome: buttons gone; what changed, who asked and why, who decided."""
    blocks = [
        {"type": "header", "text": plain(truncate(title, 150), 150)},
        section(what),
        *fields([("Requested by", user(requester_id))]),
        section(f"*Reason:* {safe(reason, 2900)}"),
        section(headline),
    ]
    return truncate(f"{escape(title)}: {headline}", 3000), blocks
