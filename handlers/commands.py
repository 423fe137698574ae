"""Slash command listeners: ``/migrate`` parsed once, then routed by subcommand (:data:`routes` in ``register``).

Every subcommand passes the checkpoint (:class:`bot.workflow.access.Checkpoint`): the workspace and channel
refusals are answered in the ack, the rest is decided and recorded on a pool after the ack, before any Graph call.
"""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App

from bot.workflow.access import Act, Checkpoint
from bot.workflow.command_text import ParsedCommand, parse_command, usage_reply
from bot.workflow.flow import MigrationFlow, SlashRequest
from bot.workflow.reports import Reports
from bot.workflow.whoami import Whoami
from bot.workflow.workers import Workers
from handlers.payloads import command_ask, text

#: A subcommand's body, called once the checkpoint allowed it (on the pool named in ``routes``).
Route = Callable[[dict, ParsedCommand], None]


def slash_request(command: dict) -> SlashRequest:
    """The parts of the (verified) slash command payload the workflow needs."""
    return SlashRequest(
        user_id=text(command, "user_id") or "",
        channel_id=text(command, "channel_id") or "",
        team_id=text(command, "team_id", required=False),
        trigger_id=text(command, "trigger_id") or "",
        response_url=text(command, "response_url", required=False),
    )


def register(
    app: App,
    *,
    flow: MigrationFlow,
    checkpoint: Checkpoint,
    reports: Reports,
    whoami: Whoami,
    workers: Workers,
    prompt: Workers,
    more_routes: dict[str, tuple[Route, Workers]] | None = None,
) -> None:
    def open_modal(command: dict, parsed: ParsedCommand) -> None:
        """migrate / validate / cancel: runs on the prompt pool, while the trigger_id is fresh."""
        flow.open_confirmation(slash_request(command), parsed.job_id, action=parsed.kind)

    def status(command: dict, parsed: ParsedCommand) -> None:
        reports.status(slash_request(command), parsed.job_id)

    def list_runs(command: dict, parsed: ParsedCommand) -> None:
        reports.list_runs(slash_request(command))

    def who_am_i(command: dict, parsed: ParsedCommand) -> None:
        whoami.answer(
            user_id=command["user_id"], channel_id=command["channel_id"], response_url=command.get("response_url")
        )

    # One line per subcommand: its body and the pool it runs on.
    routes: dict[str, tuple[Route, Workers]] = {
        "migrate": (open_modal, prompt),
        "validate": (open_modal, prompt),
        "cancel": (open_modal, prompt),
        "status": (status, workers),
        "list": (list_runs, workers),
        "whoami": (who_am_i, workers),
        **(more_routes or {}),
    }

    def migrate(ack: Ack, command: dict) -> None:
        parsed = parse_command(command.get("text"))
        route = routes.get(parsed.kind)
        if route is None:  # help, bad input, or a subcommand this version lacks: answered in the ack
            ask = command_ask(command, Act.HELP)
            place = checkpoint.screen(ask)
            if not place.allowed:
                ack(text=f":no_entry: {place.reason}")
            elif parsed.kind in ("help", "invalid"):
                ack(text=usage_reply(parsed.error))
            else:
                ack(text=usage_reply(f"`/migrate {parsed.kind}` is not available in this version of the bot."))
            workers.submit(checkpoint.decide, ask)  # recorded after the ack
            return
        body, pool = route
        ask = command_ask(command, Act(parsed.kind), job_id=parsed.job_id)
        place = checkpoint.screen(ask)
        if not place.allowed:
            ack(text=f":no_entry: {place.reason}")
            workers.submit(checkpoint.decide, ask)
            return
        ack()
        pool.submit(checkpoint.guard, ask, lambda: body(command, parsed), response_url=command.get("response_url"))

    app.command("/migrate")(migrate)
