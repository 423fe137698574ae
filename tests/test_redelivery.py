"""Re-deliveries change nothing (HTTP retries, Socket Mode envelopes), and what /readyz and the health port say."""

from __future__ import annotations

import logging
import time

import httpx

from bot.rehearsal.sandbox import APPROVER, CHANNEL, REQUESTER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_FAILED, SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin.sender import sign
from bot.store import RunState
from bot.ui.approval import APPROVE_ACTION
from handlers.payloads import delivery_key
from tests.test_approvals import request_approval
from tests.test_socket_mode import socket_bot  # noqa: F401 - fixture


def idle(workers, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while workers._pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert workers._pending == 0


def retry(world, body: str) -> httpx.Response:
    """Slack's HTTP retry of a request whose answer it missed: the same body, ``X-Slack-Retry-Num``."""
    stamp = str(int(time.time()))
    return httpx.post(
        world.server.url + "/slack/events",
        content=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(world.signing_secret, stamp, body),
            "X-Slack-Retry-Num": "1",
            "X-Slack-Retry-Reason": "http_timeout",
        },
    )


def test_a_retried_approve_click_changes_nothing(make_world):
    world = make_world()
    run = request_approval(world)
    click = world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(SEED_VALIDATE_PASSED).state == RunState.RUNNING, what="running")
    told_before = [e for e in world.slack.ephemerals if e.user == APPROVER]
    assert retry(world, click.body).status_code == 200
    idle(world.bot.workers)
    assert world.sim.count("POST", "/migrate") == 1
    assert [e for e in world.slack.ephemerals if e.user == APPROVER] == told_before  # no "already decided"
    events = [event.event for event in world.bot.store.audit_events()]
    assert events.count("approved") == 1 and "refused_click" not in " ".join(events)


def test_an_http_retry_of_a_slash_command_changes_nothing(make_world, caplog):
    caplog.set_level(logging.INFO, logger="bot.workflow.access")
    world = make_world(require_approval=False)
    sent = world.sender.slash_command(f"status {SEED_VALIDATE_FAILED}", user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    retried = retry(world, sent.body)
    assert retried.status_code == 200 and retried.text == ""
    idle(world.bot.workers)
    replies = [e for e in world.slack.ephemerals if e.user == REQUESTER and e.source == "response_url"]
    assert len(replies) == 1
    assert "already taken, ignored" in caplog.text


def test_a_socket_mode_envelope_delivered_twice_opens_one_modal(socket_bot):
    world, server = socket_bot
    opens_before = len(world.slack.calls_to("views.open"))
    fields = world.sender.slash_command_fields(SEED_VALIDATE_PASSED, user_id=REQUESTER, channel_id=CHANNEL)
    first = server.wait_ack(server.send("slash_commands", fields))
    again = server.wait_ack(server.send("slash_commands", fields))  # redelivered, as to another connection
    assert not first.get("payload") and not again.get("payload")
    world.slack.wait_for("views.open", count=opens_before + 1)
    world.slack.wait_for("views.update", count=1)
    assert len(world.slack.calls_to("views.open")) == opens_before + 1


def test_delivery_keys_name_the_request_and_leave_modal_submissions_to_the_views():
    assert delivery_key({"command": "/migrate", "trigger_id": "T1"}) == "command:T1"
    click = {"type": "block_actions", "trigger_id": "T2", "actions": [{"action_ts": "1.5"}]}
    assert delivery_key(click) == "action:T2:1.5"
    assert delivery_key({"type": "event_callback", "event_id": "Ev1"}) == "event:Ev1"
    assert delivery_key({"type": "view_submission", "trigger_id": "T3"}) is None


def test_readyz_reports_database_credential_and_role_and_healthz_stays_liveness(make_world, monkeypatch):
    world = make_world()
    ready = httpx.get(world.server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "draining": False,
        "database": "ok",
        "credential": "static",  # GRAPH_STATIC_TOKEN: no admin credential to report on
        "role": "leader",  # SQLite: the single process always leads
    }

    monkeypatch.setattr(world.bot.store, "healthy", lambda: "server closed the connection")
    down = httpx.get(world.server.url + "/readyz")
    assert down.status_code == 503 and down.json()["database"] == "server closed the connection"
    assert httpx.get(world.server.url + "/healthz").status_code == 200  # alive all the same
    monkeypatch.undo()

    world.bot.begin_shutdown()
    draining = httpx.get(world.server.url + "/readyz")
    assert draining.status_code == 503 and draining.json()["draining"] is True
    assert draining.json()["role"] == "follower"
    assert httpx.post(world.server.url + "/slack/events", content=b"x").status_code == 503


def test_socket_mode_serves_health_on_its_own_port(make_world):
    world = make_world()
    with world.bot.operations_server("127.0.0.1", 0) as health:
        assert httpx.get(health.url + "/readyz").json()["ready"] is True
        assert httpx.get(health.url + "/healthz").json()["ok"] is True
        assert httpx.post(health.url + "/slack/events", content=b"x").status_code == 404
