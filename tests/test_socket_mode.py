"""Socket Mode (the default transport): envelopes over a real WebSocket, acks back, the modal opens."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from bot.app import MigrateBot
from bot.credential.base import StaticToken
from bot.rehearsal.sandbox import CHANNEL, REQUESTER, SIM_TOKEN
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin.socket_mode import SocketModeServer


@pytest.fixture
def socket_bot(make_world):
    world = make_world(require_approval=False)
    with SocketModeServer(app_id=world.slack.app_id) as server:
        world.slack.socket_mode_url = server.url
        settings = world.bot_settings.model_copy(
            update={"slack_app_token": SecretStr(world.slack.app_token), "slack_signing_secret": None}
        )
        bot = MigrateBot(settings, tokens=StaticToken(SIM_TOKEN))
        handler = bot.socket_mode_handler()
        handler.connect()
        try:
            server.wait_connected()
            yield world, server
        finally:
            handler.close()
            bot.close()
        assert not server.violations, f"Slack would not have taken: {server.violations}"


def test_slash_command_over_socket_mode_opens_the_modal(socket_bot):
    world, server = socket_bot
    opens_before = len(world.slack.calls_to("views.open"))
    fields = world.sender.slash_command_fields(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL)
    envelope = server.send("slash_commands", fields)
    ack = server.wait_ack(envelope)
    assert ack["envelope_id"] == envelope and not ack.get("payload")  # acked at once, empty
    opened = world.slack.wait_for("views.open", count=opens_before + 1)[-1]
    assert opened.ok and opened.args["trigger_id"] == fields["trigger_id"]
    world.slack.wait_for("views.update", predicate=lambda call: "wave3_finance" in json.dumps(call.args))


def test_help_is_answered_in_the_socket_ack(socket_bot):
    world, server = socket_bot
    fields = world.sender.slash_command_fields("help", user_id=REQUESTER, channel_id=CHANNEL)
    ack = server.wait_ack(server.send("slash_commands", fields))
    assert "/migrate" in ack["payload"]["text"]
    assert world.sim.requests == []
