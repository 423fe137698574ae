"""Several ``migrate-bot run --http`` processes on one PostgreSQL database, as operators run them.

Real processes (SIGKILL and SIGTERM are real signals), the Graph simulator and the Slack stand-in on loopback.
"""

from __future__ import annotations

import re
import signal
import time
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import create_engine, text

from bench.processes import BotProcess
from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS, SEED_VALIDATE_PASSED
from bot.rehearsal.slack_standin import SlackSender, SlackStandIn
from bot.rehearsal.slack_standin.sender import sign
from bot.slack.scopes import BOT_SCOPES
from bot.store import RunState, Store
from bot.workflow.poller import DM_EVENT, FINAL_EVENT, UPDATE_EVENT

SECRET = "replica-signing-secret"
USER = "U1"
CHANNEL = "C1"


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def ready(bot: BotProcess) -> httpx.Response:
    return httpx.get(bot.url + "/readyz", timeout=5)


@pytest.fixture
def world(pg_url, tmp_path):
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    with (
        GraphSimulator(clock=SimClock(speed=0), token="rehearsal") as sim,
        SlackStandIn(scopes=frozenset(BOT_SCOPES)) as slack,
    ):
        slack.add_channel(CHANNEL, "migrations")
        slack.add_user(USER, "alice")
        # bench's BotProcess drops the operator's own settings (SLACK_*, GRAPH_*, DATABASE_URL, ...) from its env
        env = {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url,
            "GRAPH_BASE_URL": sim.base_url,
            "GRAPH_STATIC_TOKEN": "rehearsal",
            "ALLOWED_SLACK_USERS": USER,
            "REQUIRE_APPROVAL": "false",
            "POLL_INTERVAL_SECONDS": "1",
            "DATABASE_URL": pg_url,
        }
        bots: list[BotProcess] = []

        class World:
            def __init__(self):
                self.sim, self.slack, self.pg_url = sim, slack, pg_url
                self.store = Store.from_url(pg_url)

            def start(self, name: str) -> BotProcess:
                bot = BotProcess(
                    {**env, "MIGRATE_BOT_DATA_DIR": str(tmp_path / name)}, tmp_path / name, tmp_path / f"{name}.log"
                )
                bots.append(bot)
                return bot.start()

        made = World()
        try:
            yield made
        finally:
            for bot in bots:
                bot.stop()
            made.store.engine.dispose()


def record(line: str) -> None:
    """Print a measured figure (``pytest -s`` shows it); the assertions bound it, the line reports it."""
    print(f"FIGURE {line}")


def thread_posts(slack: SlackStandIn, event_type: str) -> list:
    return [
        message
        for message in slack.messages(CHANNEL)
        for message in [message, *message.replies]
        if (message.metadata or {}).get("event_type") == event_type
    ]


def resend(url: str, body: str, retry: int) -> httpx.Response:
    """Slack's HTTP retry of a request whose answer it did not get: same body, ``X-Slack-Retry-Num``."""
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign(SECRET, stamp, body),
        "X-Slack-Retry-Num": str(retry),
        "X-Slack-Retry-Reason": "http_timeout",
    }
    return httpx.post(url + "/slack/events", content=body.encode(), headers=headers, timeout=10)


def test_two_replicas_one_leader_survive_a_sigkill_of_the_leader(world):
    first = world.start("first")
    first.wait_log("elected leader")
    second = world.start("second")
    assert ready(first).json()["role"] == "leader"
    follower = ready(second).json()
    assert follower["role"] == "follower" and follower["ready"] and follower["database"] == "ok"

    # Every replica serves Slack: the request goes to the follower, the leader polls.
    with SlackSender(second.url, SECRET, world.slack) as sender:
        sent = sender.slash_command(SEED_VALIDATE_PASSED, user_id=USER, channel_id=CHANNEL)
        assert sent.status_code == 200
        [update] = world.slack.wait_for("views.update", timeout=15)
        view_id = world.slack.calls_to("views.open")[-1].response["view"]["id"]
        submitted = sender.view_submission(
            view_id,
            user_id=USER,
            values={"reason": {"reason": {"type": "plain_text_input", "value": "CHG1: failover drill"}}},
        )
        assert submitted.status_code == 200

        # Re-deliveries: Slack retries the slash command at both replicas; one modal only.
        opened = len(world.slack.calls_to("views.open"))
        for retry, bot in enumerate((first, second), start=1):
            assert resend(bot.url, sent.body, retry).status_code == 200
        assert len(world.slack.calls_to("views.open")) == opened

    run = wait_for(lambda: next(iter(world.store.runs_in(RunState.RUNNING)), None), what="the run to start")
    wait_for(lambda: world.store.get_run(run.id).root_ts, what="the root message")
    world.sim.set_status(SEED_VALIDATE_PASSED, "inProgress")
    wait_for(lambda: thread_posts(world.slack, UPDATE_EVENT), what="the leader's first status reply")

    killed_at = time.time()
    first.kill()  # SIGKILL: no goodbye, the lock goes with the session
    world.sim.set_status(SEED_VALIDATE_PASSED, "cuttingOver")
    second.wait_log("elected leader")
    wait_for(lambda: len(thread_posts(world.slack, UPDATE_EVENT)) == 2, what="the new leader's reply")
    job_path = f"/crossTenantMigrationJobs/{SEED_VALIDATE_PASSED}"
    first_poll = min(
        request.time
        for request in world.sim.requests
        if request.method == "GET" and request.path.endswith(job_path) and request.time > killed_at
    )
    failover = first_poll - killed_at
    assert failover < 1 + 3  # one poll interval plus a few seconds
    assert ready(second).json()["role"] == "leader"

    world.sim.set_status(SEED_VALIDATE_PASSED, "completed")
    wait_for(lambda: world.store.get_run(run.id).state == RunState.FINISHED, what="the run to finish")
    wait_for(  # the DM is the last thing a run does, after its audit's final outcome
        lambda: "final_outcome" in [event.event for event in world.store.audit_events()],
        what="the final outcome",
    )
    assert world.sim.count("POST", "/migrate") == 1
    replies = thread_posts(world.slack, UPDATE_EVENT)
    assert len(replies) == 2
    assert "inProgress" in replies[0].text and "cuttingOver" in replies[1].text
    assert len(thread_posts(world.slack, FINAL_EVENT)) == 1

    def dms():  # to the requester's DM channel (conversations.open), tagged with the run
        return [
            call
            for call in world.slack.calls_to("chat.postMessage")
            if call.ok and (call.args.get("metadata") or {}).get("event_type") == DM_EVENT
        ]

    wait_for(lambda: dms(), what="the requester's DM")
    assert len(dms()) == 1
    events = [event.event for event in world.store.audit_events()]
    assert events.count("final_outcome") == 1 and events.count("migrate_called") == 1

    stopping = time.monotonic()
    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(15) == 0
    shutdown = time.monotonic() - stopping
    record(f"failover (leader SIGKILLed -> first poll by the new leader, POLL_INTERVAL_SECONDS=1): {failover:.2f} s")
    record(f"idle replica shutdown (SIGTERM -> exit): {shutdown:.2f} s")


def test_sigterm_with_200_commands_queued_behind_a_slow_graph_exits_within_10_s(world):
    bot = world.start("only")
    bot.wait_log("elected leader")
    with SlackSender(bot.url, SECRET, world.slack) as sender:
        sender.slash_command(SEED_VALIDATE_PASSED, user_id=USER, channel_id=CHANNEL)
        world.slack.wait_for("views.update", timeout=15)
        view_id = world.slack.calls_to("views.open")[-1].response["view"]["id"]
        world.sim.latency = 2.5
        sender.view_submission(
            view_id, user_id=USER, values={"reason": {"reason": {"type": "plain_text_input", "value": "CHG2"}}}
        )
        wait_for(lambda: world.sim.count("POST", "/migrate") == 1, what="the migrate call to be sent")
        for _ in range(200):
            assert (
                sender.slash_command(f"status {SEED_IN_PROGRESS}", user_id=USER, channel_id=CHANNEL).status_code == 200
            )

    stopping = time.monotonic()
    bot.proc.send_signal(signal.SIGTERM)
    not_ready = wait_for(lambda: ready(bot).status_code == 503 or None, timeout=2, what="/readyz 503")
    readyz_after = time.monotonic() - stopping
    body = urlencode({"command": "/migrate", "text": "help", "trigger_id": "t", "user_id": USER})
    stamp = str(int(time.time()))
    refused = httpx.post(
        bot.url + "/slack/events",
        content=body.encode(),
        headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign(SECRET, stamp, body)},
    )
    assert refused.status_code == 503  # no new work: Slack retries at another replica
    assert bot.proc.wait(15) == 0
    shutdown = time.monotonic() - stopping
    assert not_ready
    assert shutdown < 10
    log = bot.log()
    assert "leadership released" in log
    assert re.search(r"dropped \d+ queued work task\(s\): their Slack trigger had expired", log), log[-3000:]
    # The migrate call already sent finished and was recorded: the run is RUNNING with its root message.
    [run] = world.store.runs_for_job(SEED_VALIDATE_PASSED, limit=1)
    assert run.state == RunState.RUNNING and run.root_ts
    record(
        f"SIGTERM with 200 commands queued behind a 2.5 s Graph -> exit: {shutdown:.2f} s (/readyz 503 after {readyz_after:.2f} s)"
    )
