"""Hostile and odd input at the HTTP entry and in payloads (issue 10): clear 4xx answers, never a 500, nothing
secret in logs. Real server on loopback."""

from __future__ import annotations

import io
import logging

import pytest

from bot.cli.logs import configure_logging
from bot.rehearsal.sandbox import APPROVER, CHANNEL, OUTSIDER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.store import RunState
from bot.ui.approval import APPROVE_ACTION

JOB = SEED_VALIDATE_PASSED


def request_approval(world):
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG0042")
    return world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="approval request")


@pytest.mark.parametrize("value", ["²", "١٢", "1e3", "-1", "99999999999999999999999"])
def test_a_button_value_with_unicode_digits_is_ignored_not_a_500(make_world, value):
    world = make_world()
    run = request_approval(world)
    sent = world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER, value=value)
    assert sent.status_code == 200
    assert world.run_for(JOB).state == RunState.PENDING and world.sim.count("POST", "/migrate") == 0


@pytest.fixture
def debug_log():
    """What ``migrate-bot -v`` writes (the CLI's own handler, at debug level)."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging(True, stream, force=True)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_verbose_logs_never_contain_a_response_url(make_world, debug_log):
    world = make_world()
    sent = world.sender.slash_command(JOB, user_id=OUTSIDER, channel_id=CHANNEL)  # denied via its response_url
    world.wait_until(lambda: world.slack.calls_to("response_url") or world.slack.ephemerals, what="denial")
    run = request_approval(world)
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=OUTSIDER)
    world.wait_until(lambda: any(e.user == OUTSIDER for e in world.slack.ephemerals), what="refusal")
    logged = debug_log.getvalue()
    assert "slack_sdk.webhook" in logged  # the posts to response URLs were logged at debug level ...
    assert sent.response_url not in logged and "/response/" not in logged  # ... without the capability URLs
    assert "[redacted]" in logged and "Running listener: approve" in logged
