"""Hostile and odd input at the HTTP entry and in payloads (issue 10): clear 4xx answers, never a 500, nothing
secret in logs. Real server on loopback."""

from __future__ import annotations

import gc
import io
import logging
import socket
import time

import httpx
import psutil
import pytest

from bot.ops import logs
from bot.rehearsal.sandbox import APPROVER, CHANNEL, OUTSIDER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin.sender import sign
from bot.store import RunState
from bot.ui.approval import APPROVE_ACTION

JOB = SEED_VALIDATE_PASSED


def request_approval(world):
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG0042")
    return world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="approval request")


@pytest.mark.parametrize("value", ["²", "١٢", "1e3", "-1", "99999999999999999999999"])
def test_a_button_value_with_unicode_digits_is_refused_not_a_500(make_world, value):
    world = make_world()
    run = request_approval(world)
    sent = world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER, value=value)
    assert sent.status_code == 400  # a malformed payload: a 4xx, never a 500
    assert world.run_for(JOB).state == RunState.PENDING and world.sim.count("POST", "/migrate") == 0


@pytest.fixture
def debug_log():
    """What ``migrate-bot -v`` writes (the CLI's own handler, at debug level)."""
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    logs.configure(verbose=True, stream=stream)
    yield stream
    for handler in [h for h in root.handlers if h.get_name() == logs.HANDLER_NAME]:
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
    assert logs.REDACTED in logged and "Running listener: approve" in logged


# --------------------------------------------------------------------------- 4: the HTTP entry


def raw_request(url: str, head: str, body_bytes: int = 0, timeout: float = 5.0) -> str:
    """Send ``head`` and up to ``body_bytes`` of body on a raw socket (the server may stop reading: that is the
    point); the status line it answers, or "" when it closed without one."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.encode())
        chunk = b"a" * (1024 * 1024)
        sent = 0
        try:
            while sent < body_bytes:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server answered and closed while the body was still coming
            pass
        try:
            answer = sock.recv(4096)
        except OSError:
            return ""
    return answer.decode("latin-1").split("\r\n", 1)[0]


def head(length: int, *, signed_by: str | None = None, path: str = "/slack/events") -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: bot", "Content-Type: application/x-www-form-urlencoded"]
    lines.append(f"Content-Length: {length}")
    if signed_by:
        stamp = str(int(time.time()))
        lines += [f"X-Slack-Request-Timestamp: {stamp}", f"X-Slack-Signature: {sign(signed_by, stamp, '')}"]
    return "\r\n".join(lines) + "\r\n\r\n"


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


def test_a_body_larger_than_slack_sends_is_refused_unread(world):
    started = time.monotonic()
    assert raw_request(world.server.url, head(150 * 1024 * 1024)).startswith("HTTP/1.1 413")  # no body sent
    assert time.monotonic() - started < 2  # answered at once, not after waiting for 150 MB


def test_unsigned_huge_bodies_do_not_grow_memory(world):
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    for _ in range(4):
        raw_request(world.server.url, head(150 * 1024 * 1024), body_bytes=150 * 1024 * 1024)
    gc.collect()
    grown = process.memory_info().rss - before
    assert grown < 40 * 1024 * 1024, f"memory grew by {grown / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("payload=%7Bnot-json", "application/x-www-form-urlencoded"),
        ("payload=" + "%FF" * 10, "application/x-www-form-urlencoded"),
        ('{"type": "event_callback", "event": [', "application/json"),
        ("\x00\x01\x02", "application/octet-stream"),
        ("", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_bodies_get_4xx_and_no_traceback(world, caplog, body, content_type):
    caplog.set_level(logging.INFO)
    unsigned = httpx.post(
        world.server.url + "/slack/events", content=body.encode("latin-1"), headers={"Content-Type": content_type}
    )
    assert unsigned.status_code == 401
    response, _, _ = world.sender.post(body, content_type=content_type)  # correctly signed, still malformed
    assert 400 <= response.status_code < 500
    bad_stamp = httpx.post(
        world.server.url + "/slack/events",
        content=body.encode("latin-1"),
        headers={"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
    )
    assert bad_stamp.status_code == 401
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_other_methods_and_paths_get_4xx(world):
    assert httpx.get(world.server.url + "/slack/events").status_code == 405
    assert httpx.post(world.server.url + "/nowhere", content=b"x").status_code == 404
    bad_length = raw_request(world.server.url, head(0).replace("Content-Length: 0", "Content-Length: -5"))
    assert bad_length.split(" ")[1].startswith("4")
