"""Slash command listeners: ``/migrate`` parsed once, then routed by subcommand (:data:`routes` in ``register``)."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App

from bot.workflow.command_text import ParsedCommand, parse_command, usage_reply
from bot.workflow.flow import MigrationFlow, SlashRequest
from bot.workflow.policy import Policy
from bot.workflow.reports import Reports
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers

#: A subcommand's listener body: called after parsing and the workspace/channel check, it must ack.
Route = Callable[[Ack, dict, ParsedCommand], None]


def slash_request(command: dict) -> SlashRequest:
    """The parts of the (verified) slash command payload the workflow needs."""
    return SlashRequest(
        user_id=command["user_id"],
        channel_id=command["channel_id"],
        team_id=command.get("team_id"),
        trigger_id=command["trigger_id"],
        response_url=command.get("response_url"),
    )


def register(
    app: App,
    *,
    flow: MigrationFlow,
    policy: Policy,
    reports: Reports,
    whoami: Whoami,
    workers: Workers,
    prompt: Workers,
    more_routes: dict[str, Route] | None = None,
) -> None:
    def open_modal(ack: Ack, command: dict, parsed: ParsedCommand) -> None:
        """migrate / validate / cancel: the loading modal opens on the prompt pool while the trigger_id is fresh."""
        ack()
        prompt.submit(flow.open_confirmation, slash_request(command), parsed.job_id, action=parsed.kind)

    def status(ack: Ack, command: dict, parsed: ParsedCommand) -> None:
        ack()
        workers.submit(reports.status, slash_request(command), parsed.job_id)

    def list_runs(ack: Ack, command: dict, parsed: ParsedCommand) -> None:
        ack()
        workers.submit(reports.list_runs, slash_request(command))

    def who_am_i(ack: Ack, command: dict, parsed: ParsedCommand) -> None:
        ack()
        workers.submit(
            whoami.answer,
            user_id=command["user_id"],
            channel_id=command["channel_id"],
            response_url=command.get("response_url"),
        )

    # One line per subcommand.
    routes: dict[str, Route] = {
        "migrate": open_modal,
        "validate": open_modal,
        "cancel": open_modal,
        "status": status,
        "list": list_runs,
        "whoami": who_am_i,
        **(more_routes or {}),
    }

    def migrate(ack: Ack, command: dict) -> None:
        parsed = parse_command(command.get("text"))
        if parsed.kind == "help":
            ack(text=usage_reply())
            return
        if parsed.kind == "invalid":
            ack(text=usage_reply(parsed.error))
            return
        route = routes.get(parsed.kind)
        if route is None:
            ack(text=usage_reply(f"`/migrate {parsed.kind}` is not available in this version of the bot."))
            return
        place = policy.check_place(command.get("team_id"), command.get("channel_id"))
        if not place.allowed:
            ack(text=f":no_entry: {place.reason}")
            return
        route(ack, command, parsed)

    app.command("/migrate")(migrate)
