"""``/metrics`` scraped after a command and a poll (the HTTP port, and METRICS_PORT's own server for Socket Mode),
and JSON log lines that parse and carry the job id, run id, Slack user and Graph request-id, never a secret."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.app import MigrateBot
from bot.config import load_settings
from bot.credential.base import StaticToken
from bot.errors import ConfigError
from bot.ops import logs
from bot.ops.metrics import Metrics
from bot.rehearsal.sandbox import CHANNEL, REQUESTER, SIM_TOKEN
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin.socket_mode import SocketModeServer
from bot.store import RunState


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    response = httpx.get(url + "/metrics", timeout=5)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def started_run(world):
    view = world.open_modal(SEED_VALIDATE_PASSED)
    world.submit_modal(view, "CHG0099 metrics")
    return world.wait_until(
        lambda: (run := world.run_for(SEED_VALIDATE_PASSED)) and run.state == RunState.RUNNING and run, what="running"
    )


def test_metrics_after_a_command_and_a_poll(make_world):
    world = make_world(require_approval=False)
    started_run(world)
    url = world.server.url
    samples = world.wait_until(
        lambda: (s := scrape(url)) and (value(s, "migrate_bot_poll_sweep_seconds_count") or 0) >= 2 and s,
        what="two sweeps",
    )
    with pytest.raises(Exception, match="channel_not_found"):
        world.bot.slack.chat_postMessage(channel="CNOSUCH", text="x")
    forged = world.sender.slash_command(
        "help", user_id=REQUESTER, channel_id="C1", command="/made-up", bad_signature=True
    )
    assert forged.response.status_code == 401
    samples = scrape(url)
    assert value(samples, "migrate_bot_slack_ack_seconds_count", listener="unverified") is None  # refused before Bolt
    assert not any("/made-up" in str(labels) for _, labels in samples)

    assert value(samples, "migrate_bot_slack_ack_seconds_count", listener="/migrate") >= 1
    assert value(samples, "migrate_bot_slack_ack_seconds_count", listener="view_submission:migrate_confirm") >= 1
    assert value(samples, "migrate_bot_views_open_seconds_count") >= 1
    assert value(samples, "migrate_bot_graph_requests_total", operation="get_job", status="200") >= 2
    assert value(samples, "migrate_bot_graph_requests_total", operation="migrate", status="200") == 1
    assert value(samples, "migrate_bot_graph_request_seconds_count", operation="get_job") >= 2
    assert value(samples, "migrate_bot_poll_sweep_seconds_count") >= 2
    assert value(samples, "migrate_bot_poll_lag_seconds") is not None
    assert value(samples, "migrate_bot_runs", state="running") == 1
    assert value(samples, "migrate_bot_runs", state="pending") == 0
    assert value(samples, "migrate_bot_credential_state", state="static") == 1
    assert value(samples, "migrate_bot_credential_state", state="no_admin") == 0
    assert (
        value(samples, "migrate_bot_slack_api_errors_total", method="chat.postMessage", error="channel_not_found") == 1
    )
    assert value(samples, "migrate_bot_leader") == 1

    world.bot.begin_shutdown()  # a replica that lets go of leadership follows
    assert value(scrape(url), "migrate_bot_leader") == 0


def test_socket_mode_serves_metrics_and_health_on_their_own_port(make_world):
    world = make_world()
    server = world.bot.operations_server("127.0.0.1", 0).start()
    try:
        assert httpx.get(server.url + "/healthz").json()["ok"] is True
        assert value(scrape(server.url), "migrate_bot_leader") == 1
        assert httpx.get(server.url + "/slack/events").status_code == 404
    finally:
        server.stop()


def test_each_bot_has_its_own_registry(make_world):
    one, two = Metrics(), Metrics()
    one.ack("/migrate", 0.01)
    assert b"/migrate" in one.render()[0] and b"/migrate" not in two.render()[0]


# -- JSON logs -----------------------------------------------------------------------------------------------------


@pytest.fixture
def json_log():
    stream = io.StringIO()
    logs.configure(fmt="json", level="DEBUG", stream=stream)
    logging.getLogger("bot").setLevel(logging.DEBUG)
    yield stream
    logging.getLogger("bot").setLevel(logging.NOTSET)
    logs.configure()


def test_json_log_lines_parse_and_carry_the_ids(make_world, json_log):
    world = make_world(require_approval=False)
    run = started_run(world)
    world.bot.tracker.poll_once(run.id)
    entries = [json.loads(line) for line in json_log.getvalue().splitlines()]  # every line is one JSON object
    assert entries and all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    job = SEED_VALIDATE_PASSED.lower()
    assert any(
        e.get("job_id") == job and e.get("slack_user") == REQUESTER and e.get("graph_request_id") for e in entries
    )
    assert any(e.get("run_id") == str(run.id) and e.get("job_id") == job for e in entries)
    text = json_log.getvalue()
    for secret in (world.slack.bot_token, world.signing_secret, SIM_TOKEN):
        assert secret not in text


def test_log_settings_are_read_and_checked(monkeypatch):
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings()
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings()


def test_a_token_in_a_message_is_masked():
    stream = io.StringIO()
    logs.configure(fmt="json", stream=stream)
    try:
        logging.getLogger("bot.test").warning("oops xoxb-123-456-abcdef and Bearer eyJhbGciOi.eyJzdWIi.sig")
    finally:
        logs.configure()
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert "xoxb-123" not in entry["message"] and "eyJhbGciOi" not in entry["message"]
    assert entry["message"].count("<redacted>") == 2


def test_socket_mode_acks_are_measured_and_scraped_on_the_metrics_port(make_world):
    world = make_world(require_approval=False)
    with SocketModeServer(app_id=world.slack.app_id) as socket_server:
        world.slack.socket_mode_url = socket_server.url
        settings = world.bot_settings.model_copy(
            update={"slack_app_token": SecretStr(world.slack.app_token), "slack_signing_secret": None}
        )
        bot = MigrateBot(settings, tokens=StaticToken(SIM_TOKEN))
        handler = bot.socket_mode_handler()
        handler.connect()
        metrics = bot.operations_server("127.0.0.1", 0).start()
        try:
            socket_server.wait_connected()
            fields = world.sender.slash_command_fields("help", user_id=REQUESTER, channel_id=CHANNEL)
            socket_server.wait_ack(socket_server.send("slash_commands", fields))
            samples = world.wait_until(
                lambda: (
                    (s := scrape(metrics.url))
                    and value(s, "migrate_bot_slack_ack_seconds_count", listener="/migrate")
                    and s
                ),
                what="the ack metric",
            )
            assert value(samples, "migrate_bot_slack_ack_seconds_count", listener="/migrate") == 1
        finally:
            metrics.stop()
            handler.close()
            bot.close()
