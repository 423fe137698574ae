"""Button (block_actions) listeners."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.approval_blocks import APPROVE_ACTION, REJECT_ACTION
from bot.approvals import Approvals
from bot.workers import Workers


def _run_id(action: dict) -> int | None:
    value = str(action.get("value") or "")
    return int(value) if value.isdigit() else None


def register(app: App, *, approvals: Approvals, workers: Workers) -> None:
    def approve(ack: Ack, body: dict, action: dict) -> None:
        ack()
        run_id = _run_id(action)
        if run_id is not None:
            workers.submit(approvals.approve, run_id, body["user"]["id"])

    def reject(ack: Ack, body: dict, action: dict) -> None:
        ack()
        run_id = _run_id(action)
        if run_id is not None:
            approvals.open_reject(run_id, body["user"]["id"], body["trigger_id"], body["channel"]["id"],
                                  body["container"]["message_ts"])

    app.action(APPROVE_ACTION)(approve)
    app.action(REJECT_ACTION)(reject)
