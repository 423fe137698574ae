"""Button (block_actions) listeners. Each click passes the checkpoint (:class:`bot.workflow.access.Checkpoint`)
on a pool after the ack; Approve and Reject name their request by the ids the database recorded for it."""

from __future__ import annotations

from dataclasses import replace

from slack_bolt import Ack, App

from bot.ui.approval import APPROVE_ACTION, REJECT_ACTION
from bot.ui.modal import CANCEL_BUTTON_ACTION, VALIDATE_BUTTON_ACTION
from bot.workflow.access import Act, Ask, Checkpoint
from bot.workflow.approvals import Approvals
from bot.workflow.flow import MigrationFlow, SlashRequest
from bot.workflow.workers import Workers
from handlers.payloads import interaction_ask, modal_context, run_id, text
from handlers.payloads import job_id as button_job_id


def request_ask(body: dict, action: dict, what: Act) -> Ask:
    """Approve / Reject on an approval request: the run, channel and message as the payload names them."""
    return interaction_ask(
        body,
        what,
        run_id=run_id(action.get("value")),
        channel_id=text(body, "channel", "id"),
        message_ts=text(body, "container", "message_ts"),
    )


def register(
    app: App, *, flow: MigrationFlow, approvals: Approvals, checkpoint: Checkpoint, workers: Workers, prompt: Workers
) -> None:
    def approve(ack: Ack, body: dict, action: dict) -> None:
        ask = request_ask(body, action, Act.APPROVE)
        ack()
        workers.submit(checkpoint.guard, ask, lambda: approvals.approve(ask.run_id, ask.who))

    def reject(ack: Ack, body: dict, action: dict) -> None:
        ask = request_ask(body, action, Act.REJECT)
        trigger_id = text(body, "trigger_id")
        ack()
        prompt.submit(
            checkpoint.guard,
            ask,
            lambda: approvals.open_reject(ask.run_id, ask.who, trigger_id, ask.channel_id, ask.message_ts),
        )

    def opener(job_action: str):
        """A button that opens the ``job_action`` confirmation for the job in its value: with the click's fresh
        trigger_id from a message, or in place (views.update) from inside an open confirmation modal."""

        def open_modal(ack: Ack, body: dict, action: dict) -> None:
            job_id = button_job_id(action.get("value"))
            view = body.get("view")
            if (body.get("container") or {}).get("type") == "view" and isinstance(view, dict):
                ctx = modal_context(view)
                ask = interaction_ask(body, Act(job_action), channel_id=ctx.channel_id, job_id=job_id)
                ctx = replace(ctx, job_id=job_id, user_id=ask.who, action=job_action)
                view_id, view_hash = text(view, "id"), view.get("hash")
                ack()
                workers.submit(
                    checkpoint.guard,
                    ask,
                    lambda: flow.switch_confirmation(ctx, ask.who, view_id, view_hash),
                )
                return
            ask = interaction_ask(body, Act(job_action), channel_id=text(body, "channel", "id"), job_id=job_id)
            request = SlashRequest(
                user_id=ask.who,
                channel_id=ask.channel_id or "",
                team_id=ask.team_id,
                trigger_id=text(body, "trigger_id") or "",
                response_url=text(body, "response_url", required=False),
            )
            ack()
            prompt.submit(checkpoint.guard, ask, lambda: flow.open_confirmation(request, job_id, action=job_action))

        return open_modal

    app.action(APPROVE_ACTION)(approve)
    app.action(REJECT_ACTION)(reject)
    app.action(CANCEL_BUTTON_ACTION)(opener("cancel"))
    app.action(VALIDATE_BUTTON_ACTION)(opener("validate"))
