"""Modal (view) listeners."""

from __future__ import annotations

import json

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
    ModalContext,
    words,
)
from bot.workflow.approvals import Approvals
from bot.workflow.flow import MigrationFlow
from bot.workflow.workers import Workers


def _value(view: dict, block_id: str, action_id: str) -> str:
    values = view.get("state", {}).get("values", {})
    return (((values.get(block_id) or {}).get(action_id) or {}).get("value") or "").strip()


def register(app: App, *, flow: MigrationFlow, approvals: Approvals, workers: Workers) -> None:
    def confirm(ack: Ack, body: dict, view: dict) -> None:
        reason = _value(view, REASON_BLOCK, REASON_ACTION)
        ctx = ModalContext.decode(view.get("private_metadata", ""))
        if not reason and words(ctx.action).needs_reason:
            ack(response_action="errors", errors={REASON_BLOCK: "Give a reason or a change ticket."})
            return
        ack()
        workers.submit(flow.confirm, ctx, body["user"]["id"], reason, view.get("id"))

    def reject_reason(ack: Ack, body: dict, view: dict) -> None:
        ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        workers.submit(
            approvals.reject,
            int(meta["r"]),
            body["user"]["id"],
            _value(view, REJECT_REASON_BLOCK, REJECT_REASON_ACTION),
        )

    app.view(CONFIRM_CALLBACK)(confirm)
    app.view(REJECT_CALLBACK)(reject_reason)
