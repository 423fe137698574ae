"""Listeners for changes inside a batch: ``/migrate users``, ``/migrate remove``, ``/migrate reschedule``, paging,
the Remove button, the remove and reschedule forms and the Approve / Reject of changes."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App

from bot.errors import InvalidJobId
from bot.graph.models import parse_job_id
from bot.ui import changes as change_ui
from bot.ui import reminders as reminder_ui
from bot.ui import reschedule as reschedule_ui
from bot.ui import users as users_ui
from bot.workflow.changes import ChangeDesk
from bot.workflow.command_text import ParsedCommand
from bot.workflow.flow import SlashRequest
from bot.workflow.removals import Removals
from bot.workflow.reschedule import Reschedules, picked
from bot.workflow.users import UsersView
from bot.workflow.workers import Workers

Route = Callable[[dict, ParsedCommand], None]


def _request(command: dict) -> SlashRequest:
    return SlashRequest(
        user_id=command["user_id"],
        channel_id=command["channel_id"],
        team_id=command.get("team_id"),
        trigger_id=command["trigger_id"],
        response_url=command.get("response_url"),
    )


def routes(
    *, users: UsersView, removals: Removals, reschedules: Reschedules, prompt: Workers
) -> dict[str, tuple[Route, Workers]]:
    """The ``/migrate`` subcommands of this module, for :func:`handlers.commands.register`: each body runs on the
    prompt pool (it opens a modal with the fresh trigger_id) once the checkpoint allowed it."""

    def show_users(command: dict, parsed: ParsedCommand) -> None:
        users.open(_request(command), parsed.job_id, parsed.arg or "all")

    def remove(command: dict, parsed: ParsedCommand) -> None:
        meta = change_ui.ChangeForm(
            command["channel_id"], str(parsed.job_id), command["user_id"], command.get("team_id"), parsed.arg or ""
        )
        removals.open_form(meta, command["trigger_id"], response_url=command.get("response_url"))

    def reschedule(command: dict, parsed: ParsedCommand) -> None:
        meta = reschedule_ui.RescheduleForm(
            command["channel_id"], str(parsed.job_id), command["user_id"], command.get("team_id")
        )
        reschedules.open_form(meta, command["trigger_id"], response_url=command.get("response_url"))

    return {"users": (show_users, prompt), "remove": (remove, prompt), "reschedule": (reschedule, prompt)}


def _change_id(action: dict) -> int | None:
    value = str(action.get("value") or "")
    return int(value) if value.isdigit() else None


def _picked(view: dict, block_id: str, action_id: str, key: str) -> str:
    values = view.get("state", {}).get("values", {})
    return str(((values.get(block_id) or {}).get(action_id) or {}).get(key) or "")


def register(
    app: App,
    *,
    users: UsersView,
    removals: Removals,
    reschedules: Reschedules,
    desk: ChangeDesk,
    workers: Workers,
    prompt: Workers,
) -> None:
    def page(ack: Ack, body: dict, action: dict) -> None:
        ack()
        view = body.get("view") or {}
        value = str(action.get("value") or "")
        if view.get("id") and value.isdigit():
            workers.submit(
                users.page,
                view.get("private_metadata", ""),
                body["user"]["id"],
                view["id"],
                view.get("hash"),
                int(value),
            )

    def open_remove(ack: Ack, body: dict, action: dict) -> None:
        ack()
        view = body.get("view") or {}
        ctx = users_ui.UsersContext.decode(view.get("private_metadata", ""))
        meta = change_ui.ChangeForm(
            ctx.channel_id, ctx.job_id, body["user"]["id"], ctx.team_id, str(action.get("value") or "")
        )
        prompt.submit(removals.open_form, meta, body["trigger_id"], push=True)

    def confirm_remove(ack: Ack, body: dict, view: dict) -> None:
        values = view.get("state", {}).get("values", {})
        reason = ((values.get(change_ui.REASON_BLOCK) or {}).get(change_ui.REASON_ACTION) or {}).get("value") or ""
        if not reason.strip():
            ack(response_action="errors", errors={change_ui.REASON_BLOCK: "Give a reason or a change ticket."})
            return
        ack()
        meta = change_ui.ChangeForm.decode(view.get("private_metadata", ""))
        workers.submit(removals.confirm, meta, body["user"]["id"], reason.strip())

    def confirm_reschedule(ack: Ack, body: dict, view: dict) -> None:
        meta = reschedule_ui.RescheduleForm.decode(view.get("private_metadata", ""))
        when = picked(
            _picked(view, reschedule_ui.DATE_BLOCK, reschedule_ui.DATE_ACTION, "selected_date"),
            _picked(view, reschedule_ui.TIME_BLOCK, reschedule_ui.TIME_ACTION, "selected_time"),
            meta.tz,
        )
        problem = reschedules.check(meta, when)
        reason = _picked(view, change_ui.REASON_BLOCK, change_ui.REASON_ACTION, "value").strip()
        if problem or not reason:
            errors = {reschedule_ui.DATE_BLOCK: problem} if problem else {}
            if not reason:
                errors[change_ui.REASON_BLOCK] = "Give a reason or a change ticket."
            ack(response_action="errors", errors=errors)
            return
        ack()
        workers.submit(reschedules.confirm, meta, body["user"]["id"], when, reason)

    def reschedule_button(ack: Ack, body: dict, action: dict) -> None:
        """Reschedule on a reminder: the form opens with the click's fresh trigger_id."""
        ack()
        try:
            job_id = parse_job_id(str(action.get("value") or ""))
        except InvalidJobId:
            return
        channel_id = (body.get("channel") or {}).get("id") or ""
        meta = reschedule_ui.RescheduleForm(channel_id, job_id, body["user"]["id"], (body.get("team") or {}).get("id"))
        prompt.submit(reschedules.open_form, meta, body["trigger_id"])

    def decide(approve: bool):
        def listener(ack: Ack, body: dict, action: dict) -> None:
            ack()
            change_id = _change_id(action)
            if change_id is not None:
                workers.submit(desk.approve if approve else desk.reject, change_id, body["user"]["id"])

        return listener

    app.action(f"{users_ui.PAGE_ACTION}_prev")(page)
    app.action(f"{users_ui.PAGE_ACTION}_next")(page)
    app.action(users_ui.REMOVE_BUTTON_ACTION)(open_remove)
    app.view(change_ui.REMOVE_CALLBACK)(confirm_remove)
    app.view(reschedule_ui.RESCHEDULE_CALLBACK)(confirm_reschedule)
    app.action(reminder_ui.RESCHEDULE_BUTTON_ACTION)(reschedule_button)
    app.action(change_ui.CHANGE_APPROVE_ACTION)(decide(True))
    app.action(change_ui.CHANGE_REJECT_ACTION)(decide(False))
