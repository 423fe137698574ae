"""Modal (view) listeners."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.blocks import CONFIRM_CALLBACK, REASON_ACTION, REASON_BLOCK, ModalContext
from bot.workflow import MigrationFlow
from bot.workers import Workers


def register(app: App, *, flow: MigrationFlow, workers: Workers) -> None:
    def confirm(ack: Ack, body: dict, view: dict) -> None:
        values = view.get("state", {}).get("values", {})
        reason = ((values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}).get("value") or ""
        if not reason.strip():
            ack(response_action="errors", errors={REASON_BLOCK: "Give a reason or a change ticket."})
            return
        ack()
        ctx = ModalContext.decode(view.get("private_metadata", ""))
        workers.submit(flow.confirm, ctx, body["user"]["id"], reason.strip())

    app.view(CONFIRM_CALLBACK)(confirm)
