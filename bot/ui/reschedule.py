"""Block Kit for moving the cutover: the form with Slack's date and time pickers in the requester's time zone.
Pure functions of data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import tzinfo

from bot.graph.eligibility import Eligibility
from bot.graph.models import MigrationJob
from bot.slack.mrkdwn import date, escape, plain, safe, truncate
from bot.ui.changes import reason_input
from bot.ui.modal import context, section, verdict_blocks

RESCHEDULE_CALLBACK = "reschedule_confirm"
DATE_BLOCK = "cutover_date"
DATE_ACTION = "cutover_date"
TIME_BLOCK = "cutover_time"
TIME_ACTION = "cutover_time"


@dataclass(frozen=True)
class RescheduleForm:
    """What the form carries to its submission (``private_metadata``)."""

    channel_id: str
    job_id: str
    user_id: str
    team_id: str | None = None
    tz: str = "UTC"
    previous: str | None = None  # completeAfterDateTime when the form was filled (ISO 8601 UTC)

    def encode(self) -> str:
        return json.dumps(
            {
                "c": self.channel_id,
                "j": self.job_id,
                "u": self.user_id,
                "t": self.team_id,
                "z": self.tz,
                "p": self.previous,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, raw: str) -> RescheduleForm:
        data = json.loads(raw or "{}")
        return cls(data["c"], data["j"], data["u"], data.get("t"), data.get("z", "UTC"), data.get("p"))


def _view(meta: RescheduleForm, blocks: list[dict], submit: str | None = None) -> dict:
    view = {
        "type": "modal",
        "callback_id": RESCHEDULE_CALLBACK,
        "title": plain("Move the cutover", 24),
        "close": plain("Close", 24),
        "private_metadata": meta.encode(),
        "blocks": blocks[:100],
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def loading(meta: RescheduleForm) -> dict:
    return _view(meta, [section(f":hourglass_flowing_sand: Loading job `{escape(meta.job_id)}` from Microsoft Graph…")])


def message(meta: RescheduleForm, text: str) -> dict:
    return _view(meta, [section(text)])


def form(
    meta: RescheduleForm, job: MigrationJob, eligibility: Eligibility, zone: tzinfo, *, needs_approval: bool
) -> dict:
    """The current window, the verdict, and (when allowed) the pickers preset to the current cutover in the
    person's time zone, a required reason and a submit button."""
    local = job.complete_after.astimezone(zone) if job.complete_after else None
    current = f"*Cutover not before:* {date(job.complete_after)}"
    if local is not None:
        current += f" ({local.strftime('%Y-%m-%d %H:%M')} {escape(meta.tz)})"
    blocks: list[dict] = [
        {"type": "header", "text": plain(f"Move the cutover of {truncate(job.name, 110)}", 150)},
        context(f"Job `{escape(job.id)}` · status `{safe(job.status_label, 60)}`"),
        section(current),
    ]
    said = verdict_blocks(eligibility)
    for block in said:
        block["text"]["text"] = (
            block["text"]["text"]
            .replace("This job can be migrated", "The cutover can be moved")
            .replace("This job can't be migrated", "The cutover can't be moved")
        )
    blocks += said
    if not eligibility.allowed:
        return _view(meta, blocks)
    date_element: dict = {"type": "datepicker", "action_id": DATE_ACTION}
    time_element: dict = {"type": "timepicker", "action_id": TIME_ACTION, "timezone": meta.tz}
    if local is not None:
        date_element["initial_date"] = local.strftime("%Y-%m-%d")
        time_element["initial_time"] = local.strftime("%H:%M")
    blocks += [
        {"type": "input", "block_id": DATE_BLOCK, "label": plain("New date", 2000), "element": date_element},
        {
            "type": "input",
            "block_id": TIME_BLOCK,
            "label": plain(f"New time ({meta.tz})", 2000),
            "element": time_element,
        },
        context("Cutover starts by itself once this time has passed and can then no longer be cancelled or moved."),
    ]
    if needs_approval:
        blocks.append(section("A second person must approve it in the channel."))
    blocks.append(reason_input())
    return _view(meta, blocks, "Request approval" if needs_approval else "Move cutover")
