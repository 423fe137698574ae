"""Modal (view) listeners. Each submission passes the checkpoint (:class:`bot.workflow.access.Checkpoint`) on the
worker pool after the ack; the rejection modal names its request by the ids the database recorded for it."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.ui.approval import (
    REJECT_CALLBACK,
    REJECT_REASON_ACTION,
    REJECT_REASON_BLOCK,
)
from bot.ui.modal import (
    CONFIRM_CALLBACK,
    REASON_ACTION,
    REASON_BLOCK,
    words,
)
from bot.workflow.access import Act, Checkpoint
from bot.workflow.approvals import Approvals
from bot.workflow.workers import Workers
from handlers.payloads import interaction_ask, metadata, modal_context, run_id, text


def _value(view: dict, block_id: str, action_id: str) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return (((values.get(block_id) or {}).get(action_id) or {}).get("value") or "").strip()


def register(app: App, *, approvals: Approvals, checkpoint: Checkpoint, workers: Workers) -> None:
    def confirm(ack: Ack, body: dict, view: dict) -> None:
        reason = _value(view, REASON_BLOCK, REASON_ACTION)
        ctx = modal_context(view)
        ask = interaction_ask(body, Act.SUBMIT, channel_id=ctx.channel_id, job_id=ctx.job_id, owner_id=ctx.user_id)
        if not reason and words(ctx.action).needs_reason:
            ack(response_action="errors", errors={REASON_BLOCK: "Give a reason or a change ticket."})
            return
        ack()
        workers.submit(checkpoint.guard, ask, lambda: approvals.confirm(ctx, reason, view_id=view.get("id")))

    def reject_reason(ack: Ack, body: dict, view: dict) -> None:
        meta = metadata(view)
        ask = interaction_ask(
            body,
            Act.REJECT,
            run_id=run_id(meta.get("r")),
            channel_id=text(meta, "c"),
            message_ts=text(meta, "ts"),
        )
        note = _value(view, REJECT_REASON_BLOCK, REJECT_REASON_ACTION)
        ack()
        workers.submit(checkpoint.guard, ask, lambda: approvals.reject(ask.run_id, ask.who, note))

    app.view(CONFIRM_CALLBACK)(confirm)
    app.view(REJECT_CALLBACK)(reject_reason)
