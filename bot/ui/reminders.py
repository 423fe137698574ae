"""Block Kit for the reminders in a run's thread: cutover in 24 h / 1 h, and a validation about to expire.
Pure functions of data."""

from __future__ import annotations

from datetime import datetime

from bot.slack.mrkdwn import date, escape, plain, safe
from bot.ui.modal import cancel_button, section

RESCHEDULE_BUTTON_ACTION = "job_open_reschedule"


def reschedule_button(job_id: str) -> dict:
    """Opens the reschedule form for the job (see :mod:`bot.workflow.reschedule`)."""
    return {"type": "button", "action_id": RESCHEDULE_BUTTON_ACTION, "value": job_id, "text": plain("Reschedule", 75)}


def cutover_reminder(
    *, job_name: str, job_id: str, cutover: datetime, lead: str, can_move: bool, can_cancel: bool
) -> tuple[str, list[dict]]:
    """``lead`` is "24 hours" or "1 hour". Reschedule and Cancel are offered while Graph still accepts them."""
    name = safe(job_name, 200)
    text = f":alarm_clock: Cutover of {name} in {lead}: not before {date(cutover)}"
    blocks = [
        section(
            f":alarm_clock: *Cutover of {name} in {lead}*: it starts by itself at {date(cutover)} (your time zone). "
            "From then on the batch can no longer be cancelled or moved."
        )
    ]
    buttons = []
    if can_move:
        buttons.append(reschedule_button(job_id))
    if can_cancel:
        buttons.append(cancel_button(job_id))
    if buttons:
        blocks.append({"type": "actions", "block_id": f"reminder:{escape(job_id)}", "elements": buttons})
    return text, blocks


def validation_expiry_warning(*, job_name: str, job_id: str, expires: datetime) -> tuple[str, list[dict]]:
    name = safe(job_name, 200)
    text = f":hourglass: The validation of {name} expires {date(expires)}"
    blocks = [
        section(
            f":hourglass: *The validation of {name} expires {date(expires)}.* Graph refuses `migrate` once a "
            f"validation is older than 7 days. Start the migration before then with `/migrate {escape(job_id)}`, "
            "or plan a new validation."
        )
    ]
    return text, blocks
