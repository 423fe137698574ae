"""``/migrate whoami``: registered before the ``/migrate`` listener, which it takes over for that one word."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.health import Whoami
from bot.policy import Policy
from bot.workers import Workers


def is_whoami(command: dict) -> bool:
    return (command.get("text") or "").strip().lower() == "whoami"


def register(app: App, *, whoami: Whoami, policy: Policy, workers: Workers) -> None:
    def answer(ack: Ack, command: dict) -> None:
        place = policy.check_place(command.get("team_id"), command.get("channel_id"))
        if not place.allowed:
            ack(text=f":no_entry: {place.reason}")
            return
        ack()
        workers.submit(whoami.answer, user_id=command["user_id"], channel_id=command["channel_id"],
                       response_url=command.get("response_url"))

    app.command("/migrate", matchers=[is_whoami])(answer)
