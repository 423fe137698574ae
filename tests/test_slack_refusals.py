"""The Slack stand-in refuses what Slack refuses, and the bot copes: late acks, rate limits, ephemerals to people
outside the channel, message metadata, Socket Mode refreshes."""

from __future__ import annotations

import json
import threading
import time

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.app import MigrateBot
from bot.credential.base import StaticToken
from bot.httpserver import WSGIServer
from bot.rehearsal.sandbox import CHANNEL, REQUESTER, SIM_TOKEN
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin import SlackSender, SlackStandIn
from bot.rehearsal.slack_standin.socket_mode import SocketModeServer
from bot.slack.web import ROOT_EVENT, find_root, post_root
from bot.store import RunState
from tests.conftest import assert_slack_took_everything

SECRET = "refusals-signing-secret"


def modal() -> dict:
    return {
        "type": "modal",
        "callback_id": "c",
        "title": {"type": "plain_text", "text": "T"},
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}],
    }


class SlowBot:
    """A Slack app that acks after ``delay`` real seconds (what a blocked listener pool does)."""

    def __init__(self, delay: float, body: dict) -> None:
        self.delay = delay
        self.body = body
        self.release = threading.Event()

    def __call__(self, environ, start_response):
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.release.wait(self.delay)  # the bot under test is slow on purpose: nothing to wait for
        payload = json.dumps(self.body).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


@pytest.fixture
def standin():
    with SlackStandIn(ack_timeout=0.3) as slack:
        slack.add_channel("CMIG", "migrations", members=["UALICE"])
        slack.add_user("UALICE", "alice")
        yield slack


# Late acknowledgements
@pytest.mark.parametrize("delay", [0.0, 0.6])
def test_a_late_slash_command_reply_is_dropped_and_fails_the_test(standin, delay):
    bot = SlowBot(delay, {"response_type": "ephemeral", "text": "usage: /migrate <jobId>"})
    with WSGIServer(bot, "127.0.0.1", 0) as server, SlackSender(server.url, SECRET, standin) as sender:
        sent = sender.slash_command("help", user_id="UALICE", channel_id="CMIG")
    shown = [e.text for e in standin.ephemerals]
    if delay == 0.0:
        assert not sent.late and shown == ["usage: /migrate <jobId>"]
        assert_slack_took_everything(standin)
        return
    assert sent.late and shown == []  # Slack showed operation_timeout instead
    assert len(standin.violations) == 1 and "late ack" in standin.violations[0]
    with pytest.raises(AssertionError, match="late ack"):
        assert_slack_took_everything(standin)  # what the world fixtures run after each test


def test_a_late_response_action_error_is_ignored(standin):
    view_id = WebClient(token=standin.bot_token, base_url=standin.api_url).views_open(
        trigger_id=standin.issue_trigger("UALICE"), view=modal()
    )["view"]["id"]
    bot = SlowBot(0.6, {"response_action": "errors", "errors": {"reason": "Give a reason"}})
    with WSGIServer(bot, "127.0.0.1", 0) as server, SlackSender(server.url, SECRET, standin) as sender:
        sent = sender.view_submission(view_id, user_id="UALICE")
    assert sent.late and sent.ack_effect["action"] == "operation_timeout" and sent.ack_effect["errors"] == {}
    assert standin.view_is_open(view_id) and standin.violations


def test_a_late_socket_mode_ack_is_dropped_and_recorded():
    with SocketModeServer(ack_timeout=0.2) as server:
        from websockets.sync.client import connect

        with connect(server.url) as app:
            assert json.loads(app.recv())["type"] == "hello"
            envelope = server.send("slash_commands", {"command": "/migrate", "text": "help"})
            assert json.loads(app.recv())["envelope_id"] == envelope
            time.sleep(0.3)  # the app under test is slow on purpose
            app.send(json.dumps({"envelope_id": envelope, "payload": {"text": "too late"}}))
            ack = server.wait_ack(envelope)
    assert ack["late"] and "payload" not in ack and "late ack" in server.violations[0]


# Rate limits
def test_method_tiers_answer_429_with_retry_after(standin):
    standin.add_usergroup("S1", "migrators", ["UALICE"])
    client = WebClient(token=standin.bot_token, base_url=standin.api_url)
    for _ in range(20):  # Tier 2: 20 a minute
        client.usergroups_users_list(usergroup="S1")
    with pytest.raises(SlackApiError) as caught:
        client.usergroups_users_list(usergroup="S1")
    assert caught.value.response.status_code == 429 and int(caught.value.response.headers["Retry-After"]) >= 1
    standin.set_rate_limits(tiers={2: (100, 100)})  # a test that needs a burst says so
    assert client.usergroups_users_list(usergroup="S1")["ok"]


def test_a_wave_of_root_messages_meets_429s_and_each_is_posted_once(make_world):
    world = make_world(require_approval=False)
    jobs = [world.sim.create_job(f"wave_{n}", "validatePassed") for n in range(5)]
    for job_id in jobs:  # five migrations started within a second or two: more than Slack's burst in one channel
        world.submit_modal(world.open_modal(job_id), "CHG-wave")
    world.wait_until(
        lambda: all((r := world.run_for(job_id)) and r.root_ts for job_id in jobs), timeout=30, what="roots"
    )
    assert any(c.http_status == 429 for c in world.slack.calls_to("chat.postMessage"))
    roots = [m for m in world.slack.messages(CHANNEL) if (m.metadata or {}).get("event_type") == ROOT_EVENT]
    assert sorted(m.metadata["event_payload"]["run_id"] for m in roots) == sorted(
        world.run_for(job_id).id for job_id in jobs
    )
    assert world.sim.count("POST", "/migrate") == 5


def test_the_poller_does_not_post_a_root_the_flow_is_still_retrying(make_world):
    world = make_world(require_approval=False)
    world.slack.fail_next("chat.postMessage", status=429, retry_after=1)  # the flow's post sleeps out a 429
    world.submit_modal(world.open_modal(SEED_VALIDATE_PASSED), "CHG1")
    run = world.wait_until(
        lambda: (r := world.run_for(SEED_VALIDATE_PASSED)) and r.root_pending and r.state == RunState.RUNNING and r,
        what="root post in flight",
    )
    world.bot.tracker.poll_once(run.id)  # a tick while the flow's retry is pending
    [limited] = world.slack.calls_to("chat.postMessage")[:1]
    assert limited.http_status == 429
    world.slack.wait_for(  # the flow's retry, after Retry-After
        "chat.postMessage", predicate=lambda call: call.ok and call.time >= limited.time + 0.9
    )
    root_ts = world.wait_until(lambda: world.run_for(SEED_VALIDATE_PASSED).root_ts, what="the flow stored its root")
    world.bot.tracker.poll_once(run.id)
    assert [m.ts for m in world.slack.messages(CHANNEL)] == [root_ts]


# Ephemerals
def test_someone_who_left_the_channel_is_told_in_a_dm(make_world):
    world = make_world(require_approval=False)
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.slack.leave(CHANNEL, REQUESTER)
    world.sim.set_status(SEED_VALIDATE_PASSED, "validateFailed")  # Graph will refuse: the bot tells the requester
    world.submit_modal(view, "CHG1")
    dm = "D" + REQUESTER.lstrip("UW")
    told = world.wait_until(lambda: world.slack.messages(dm), what="a DM")
    assert "status does not allow" in told[0].text
    refused = [c for c in world.slack.calls_to("chat.postEphemeral") if not c.ok]
    assert refused and refused[0].error == "user_not_in_channel"
    assert world.run_for(SEED_VALIDATE_PASSED).state == RunState.NOT_STARTED


# Metadata
def test_metadata_is_validated_like_slack(standin):
    standin.set_rate_limits(per_channel=(50, 50))  # six posts at once: more than Slack's burst
    client = WebClient(token=standin.bot_token, base_url=standin.api_url)
    with pytest.raises(SlackApiError) as caught:
        client.api_call("chat.postMessage", json={"channel": "CMIG", "text": "x", "metadata": "run 7"})
    assert caught.value.response["error"] == "invalid_metadata_format"
    for bad in (
        {"event_type": "migrate bot root!", "event_payload": {"run_id": 7}},
        {"event_type": "migrate_bot_root", "event_payload": "run 7"},
        {"event_type": "migrate_bot_root", "event_payload": {"run_id": None}},
        {"event_type": "migrate_bot_root", "event_payload": {"runs": [[1, 2]]}},
    ):
        posted = client.chat_postMessage(channel="CMIG", text="x", metadata=bad)
        assert posted["warning"] == "invalid_metadata_schema"
        assert standin.message("CMIG", posted["ts"]).metadata is None  # posted, metadata dropped
    good = {"event_type": "task_created", "event_payload": {"id": "TK-1", "n": 2, "ok": True, "tags": [{"a": "b"}]}}
    kept = client.chat_postMessage(channel="CMIG", text="x", metadata=good)
    assert "warning" not in kept.data and standin.message("CMIG", kept["ts"]).metadata == good


def test_the_bots_own_metadata_survives_validation_and_is_found_again():
    with SlackStandIn(scopes={"chat:write", "channels:history"}) as slack:
        slack.add_channel("CMIG", "migrations")
        client = WebClient(token=slack.bot_token, base_url=slack.api_url)
        since = time.time() - 1
        ts = post_root(client, channel_id="CMIG", run_id=42, text="root", blocks=[])
        assert "warning" not in slack.calls_to("chat.postMessage")[-1].response
        assert find_root(client, channel_id="CMIG", run_id=42, since=since) == ts


# Socket Mode refresh
@pytest.fixture
def socket_world(make_world):
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
        assert not server.violations


def test_a_refresh_disconnect_is_followed_by_a_reconnect_and_nothing_is_lost(socket_world):
    world, server = socket_world
    help_fields = world.sender.slash_command_fields("help", user_id=REQUESTER, channel_id=CHANNEL)
    assert "/migrate" in server.wait_ack(server.send("slash_commands", help_fields))["payload"]["text"]
    server.refresh()  # Slack: {"type": "disconnect", "reason": "refresh_requested"}
    during = server.send(  # sent while the app reconnects: delivered on its new connection
        "slash_commands", world.sender.slash_command_fields(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL)
    )
    server.wait_connected(sessions=2)
    assert server.wait_ack(during, timeout=10)["envelope_id"] == during
    world.slack.wait_for("views.update", predicate=lambda call: "wave3_finance" in json.dumps(call.args))
    server.wait_connections(1)  # the app closed the refreshed connection itself
    after = server.send(
        "slash_commands", world.sender.slash_command_fields("help", user_id=REQUESTER, channel_id=CHANNEL)
    )
    assert "/migrate" in server.wait_ack(after)["payload"]["text"]
    assert len(world.slack.calls_to("apps.connections.open")) == 2
