"""Listeners for changes inside a batch: ``/migrate users``, ``/migrate remove``, ``/migrate reschedule``, paging,
the Remove button, the remove and reschedule forms, a reminder's Reschedule button and the Approve / Reject of
changes. Each passes the checkpoint (:class:`bot.workflow.access.Checkpoint`) on a pool after the ack; Approve and
Reject name their change request by the ids the database recorded for it."""

from __future__ import annotations

from collections.abc import Callable

from slack_bolt import Ack, App

from bot.ui import changes as change_ui
from bot.ui import reminders as reminder_ui
from bot.ui import reschedule as reschedule_ui
from bot.ui import users as users_ui
from bot.workflow.access import Act, Ask, Checkpoint
from bot.workflow.changes import ChangeDesk
from bot.workflow.command_text import ParsedCommand
from bot.workflow.flow import SlashRequest
from bot.workflow.removals import Removals
from bot.workflow.reschedule import Reschedules, picked
from bot.workflow.users import UsersView
from bot.workflow.workers import Workers
from handlers.payloads import MalformedPayload, change_id, form, interaction_ask, job_id, text
from handlers.payloads import page as page_number

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


def _picked(view: dict, block_id: str, action_id: str, key: str) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return str(((values.get(block_id) or {}).get(action_id) or {}).get(key) or "")


def change_ask(body: dict, action: dict, what: Act) -> Ask:
    """Approve / Reject on a change request: the change, channel and message as the payload names them."""
    return interaction_ask(
        body,
        what,
        change_id=change_id(action.get("value")),
        channel_id=text(body, "channel", "id"),
        message_ts=text(body, "container", "message_ts"),
    )


def register(
    app: App,
    *,
    users: UsersView,
    removals: Removals,
    reschedules: Reschedules,
    desk: ChangeDesk,
    checkpoint: Checkpoint,
    workers: Workers,
    prompt: Workers,
) -> None:
    def page(ack: Ack, body: dict, action: dict) -> None:
        view = body.get("view")
        ctx = form(view, users_ui.UsersContext.decode)
        ask = interaction_ask(body, Act.USERS_PAGE, channel_id=ctx.channel_id, job_id=ctx.job_id)
        shown = ctx.at(page_number(action.get("value")))
        view_id, view_hash = text(view, "id"), view.get("hash")
        ack()
        workers.submit(checkpoint.guard, ask, lambda: users.show(shown, view_id, view_hash))

    def open_remove(ack: Ack, body: dict, action: dict) -> None:
        ctx = form(body.get("view"), users_ui.UsersContext.decode)
        ask = interaction_ask(body, Act.REMOVE, channel_id=ctx.channel_id, job_id=ctx.job_id)
        meta = change_ui.ChangeForm(ctx.channel_id, ctx.job_id, ask.who, ctx.team_id, text(action, "value") or "")
        trigger_id = text(body, "trigger_id")
        ack()
        prompt.submit(checkpoint.guard, ask, lambda: removals.open_form(meta, trigger_id, push=True))

    def confirm_remove(ack: Ack, body: dict, view: dict) -> None:
        meta = form(view, change_ui.ChangeForm.decode)
        if not meta.task_id:
            raise MalformedPayload("the remove form names no user")
        ask = interaction_ask(
            body, Act.REMOVE_SUBMIT, channel_id=meta.channel_id, job_id=meta.job_id, owner_id=meta.user_id
        )
        view_id = text(view, "id")
        reason = _picked(view, change_ui.REASON_BLOCK, change_ui.REASON_ACTION, "value").strip()
        if not reason:
            ack(response_action="errors", errors={change_ui.REASON_BLOCK: "Give a reason or a change ticket."})
            return
        ack()
        workers.submit(checkpoint.guard, ask, lambda: removals.confirm(meta, ask.who, reason, view_id))

    def confirm_reschedule(ack: Ack, body: dict, view: dict) -> None:
        meta = form(view, reschedule_ui.RescheduleForm.decode)
        ask = interaction_ask(
            body, Act.RESCHEDULE_SUBMIT, channel_id=meta.channel_id, job_id=meta.job_id, owner_id=meta.user_id
        )
        when = picked(
            _picked(view, reschedule_ui.DATE_BLOCK, reschedule_ui.DATE_ACTION, "selected_date"),
            _picked(view, reschedule_ui.TIME_BLOCK, reschedule_ui.TIME_ACTION, "selected_time"),
            meta.tz,
        )
        view_id = text(view, "id")
        problem = reschedules.check(meta, when)
        reason = _picked(view, change_ui.REASON_BLOCK, change_ui.REASON_ACTION, "value").strip()
        if problem or not reason:
            errors = {reschedule_ui.DATE_BLOCK: problem} if problem else {}
            if not reason:
                errors[change_ui.REASON_BLOCK] = "Give a reason or a change ticket."
            ack(response_action="errors", errors=errors)
            return
        ack()
        workers.submit(checkpoint.guard, ask, lambda: reschedules.confirm(meta, ask.who, when, reason, view_id))

    def reschedule_button(ack: Ack, body: dict, action: dict) -> None:
        """Reschedule on a reminder: the form opens with the click's fresh trigger_id."""
        job = job_id(action.get("value"))
        ask = interaction_ask(body, Act.RESCHEDULE, channel_id=text(body, "channel", "id"), job_id=job)
        meta = reschedule_ui.RescheduleForm(ask.channel_id or "", job, ask.who, ask.team_id)
        trigger_id = text(body, "trigger_id")
        response_url = text(body, "response_url", required=False)
        ack()
        prompt.submit(checkpoint.guard, ask, lambda: reschedules.open_form(meta, trigger_id), response_url=response_url)

    def approve_change(ack: Ack, body: dict, action: dict) -> None:
        ask = change_ask(body, action, Act.CHANGE_APPROVE)
        ack()
        workers.submit(
            checkpoint.guard,
            ask,
            lambda: desk.approve(ask.change_id, ask.who),
            otherwise=lambda decision: desk.approval_refused(ask.change_id, ask.who, ask.channel_id, decision.reason),
        )

    def reject_change(ack: Ack, body: dict, action: dict) -> None:
        ask = change_ask(body, action, Act.CHANGE_REJECT)
        ack()
        workers.submit(checkpoint.guard, ask, lambda: desk.reject(ask.change_id, ask.who))

    app.action(f"{users_ui.PAGE_ACTION}_prev")(page)
    app.action(f"{users_ui.PAGE_ACTION}_next")(page)
    app.action(users_ui.REMOVE_BUTTON_ACTION)(open_remove)
    app.view(change_ui.REMOVE_CALLBACK)(confirm_remove)
    app.view(reschedule_ui.RESCHEDULE_CALLBACK)(confirm_reschedule)
    app.action(reminder_ui.RESCHEDULE_BUTTON_ACTION)(reschedule_button)
    app.action(change_ui.CHANGE_APPROVE_ACTION)(approve_change)
    app.action(change_ui.CHANGE_REJECT_ACTION)(reject_change)
