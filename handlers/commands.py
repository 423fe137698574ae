"""Slash command listeners."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.commands import parse_command, usage_reply
from bot.policy import Policy
from bot.workflow import MigrationFlow, SlashRequest


def register(app: App, *, flow: MigrationFlow, policy: Policy) -> None:
    def migrate(ack: Ack, command: dict) -> None:
        parsed = parse_command(command.get("text"))
        if parsed.kind == "help":
            ack(text=usage_reply())
            return
        if parsed.kind == "invalid":
            ack(text=usage_reply(parsed.error))
            return
        place = policy.check_place(command.get("team_id"), command.get("channel_id"))
        if not place.allowed:
            ack(text=f":no_entry: {place.reason}")
            return
        ack()
        request = SlashRequest(
            user_id=command["user_id"],
            channel_id=command["channel_id"],
            team_id=command.get("team_id"),
            trigger_id=command["trigger_id"],
            response_url=command.get("response_url"),
        )
        flow.open_confirmation(request, parsed.job_id)

    app.command("/migrate")(migrate)
