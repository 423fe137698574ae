"""Button (block_actions) listeners."""

from __future__ import annotations

import re
from dataclasses import replace

from slack_bolt import Ack, App

from bot.errors import InvalidJobId
from bot.graph.models import parse_job_id
from bot.ui.approval import APPROVE_ACTION, REJECT_ACTION
from bot.ui.modal import CANCEL_BUTTON_ACTION, VALIDATE_BUTTON_ACTION, ModalContext
from bot.workflow.approvals import Approvals
from bot.workflow.flow import MigrationFlow, SlashRequest
from bot.workflow.workers import Workers

RUN_ID = re.compile(r"[0-9]{1,18}")


def _run_id(action: dict) -> int | None:
    value = str(action.get("value") or "")
    return int(value) if RUN_ID.fullmatch(value) else None  # not str.isdigit: it accepts "²", int() does not


def _job_id(action: dict) -> str | None:
    try:
        return parse_job_id(str(action.get("value") or ""))
    except InvalidJobId:
        return None


def register(app: App, *, flow: MigrationFlow, approvals: Approvals, workers: Workers, prompt: Workers) -> None:
    def approve(ack: Ack, body: dict, action: dict) -> None:
        ack()
        run_id = _run_id(action)
        if run_id is not None:
            workers.submit(approvals.approve, run_id, body["user"]["id"])

    def reject(ack: Ack, body: dict, action: dict) -> None:
        ack()
        run_id = _run_id(action)
        if run_id is not None:
            prompt.submit(
                approvals.open_reject,
                run_id,
                body["user"]["id"],
                body["trigger_id"],
                body["channel"]["id"],
                body["container"]["message_ts"],
            )

    def opener(job_action: str):
        """A button that opens the ``job_action`` confirmation for the job in its value: with the click's fresh
        trigger_id from a message, or in place (views.update) from inside an open confirmation modal."""

        def open_modal(ack: Ack, body: dict, action: dict) -> None:
            ack()
            job_id = _job_id(action)
            if job_id is None:
                return
            user_id = body["user"]["id"]
            view = body.get("view")
            if (body.get("container") or {}).get("type") == "view" and view:
                ctx = replace(
                    ModalContext.decode(view.get("private_metadata", "")),
                    job_id=job_id,
                    user_id=user_id,
                    action=job_action,
                )
                workers.submit(flow.switch_confirmation, ctx, user_id, view["id"], view.get("hash"))
                return
            channel_id = (body.get("channel") or {}).get("id") or ""
            team_id = (body.get("team") or {}).get("id")
            place = flow.policy.check_place(team_id, channel_id)
            if not place.allowed:
                workers.submit(flow.tell_user, channel_id, user_id, f":no_entry: {place.reason}")
                return
            request = SlashRequest(
                user_id=user_id,
                channel_id=channel_id,
                team_id=team_id,
                trigger_id=body["trigger_id"],
                response_url=body.get("response_url"),
            )
            prompt.submit(flow.open_confirmation, request, job_id, action=job_action)

        return open_modal

    app.action(APPROVE_ACTION)(approve)
    app.action(REJECT_ACTION)(reject)
    app.action(CANCEL_BUTTON_ACTION)(opener("cancel"))
    app.action(VALIDATE_BUTTON_ACTION)(opener("validate"))
