"""The poller against a real Graph simulator and a real Slack stand-in over HTTP, on a real SQLite store.

Ticks are driven with ``poll_once`` (the scheduler is started paused, so it only proves jobs are added and
removed); one test runs the real scheduler at a short interval. Simulated Graph time moves with
``sim.clock.advance``; the poller's own clock (elapsed times, staleness) is a :class:`FakeClock`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import event

from bot.credential.base import StaticToken
from bot.errors import CredentialError
from bot.factories import build_poll_pool
from bot.graph.client import GraphClient
from bot.rehearsal.simulator import GraphSimulator, SimClock
from bot.rehearsal.slack_standin import SlackStandIn
from bot.rehearsal.slack_standin.api import DEFAULT_SCOPES
from bot.rehearsal.slack_standin.records import Message
from bot.store import AuditQuery, Run, RunState, Store
from bot.ui import thread as root_blocks
from bot.workflow.poller import FINAL_EVENT, SWEEP_JOB_ID, UPDATE_EVENT, Poller

TOKEN = "poller-test-token"
CHANNEL = "CMIG"
REQUESTER = "UREQ"
ADMINS = "S0ADMINS"
EVIL_NAME = "wave3 <!channel> & <@U999>"
# Simulated seconds to leave each status (Timings defaults: processing 120 s, inProgress 900 s, cutover 780 s).
TO_IN_PROGRESS, TO_CUTOVER, TO_END = 121, 901, 781


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 7, 20, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Crash(BaseException):
    """The process dies here (BaseException: nothing in the bot catches it)."""


class BrokenTokens:
    def token(self, *, claims_challenge: str | None = None) -> str:
        raise CredentialError("The refresh token expired; sign in again.")


class World:
    """Simulator, stand-in, store, clients: everything a Poller needs, plus helpers to read the channel."""

    def __init__(self, tmp_path, *, slack_retries: int = 2) -> None:
        self.sim = GraphSimulator(clock=SimClock(speed=0), seed=False, token=TOKEN).start()
        self.standin = SlackStandIn(scopes=DEFAULT_SCOPES | {"channels:history", "groups:history"}).start()
        self.standin.add_channel(CHANNEL, "migrations")
        self.standin.add_user(REQUESTER, "requester")
        self.slack = WebClient(
            token=self.standin.bot_token,
            base_url=self.standin.api_url,
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=slack_retries)],
        )
        self.graph = GraphClient(
            self.sim.base_url,
            StaticToken(TOKEN),
            timeout=2.0,
            connect_timeout=1.0,
            max_attempts=1,
            sleep=lambda seconds: None,
        )
        self.db_url = f"sqlite:///{tmp_path / 'bot.db'}"
        self.store = Store.from_url(self.db_url)
        self.clock = FakeClock()
        self.pollers: list[Poller] = []

    def close(self) -> None:
        for poller in self.pollers:
            poller.shutdown(wait=True)
        self.graph.close()
        self.sim.stop()
        self.standin.stop()
        self.store.engine.dispose()

    # Building blocks
    def poller(
        self,
        *,
        store: Store | None = None,
        graph=None,
        interval: float = 60.0,
        scheduler: BackgroundScheduler | None = None,
        stale_after: timedelta = timedelta(hours=24),
    ) -> Poller:
        if scheduler is None:
            scheduler = BackgroundScheduler(timezone=UTC)
            scheduler.start(paused=True)  # jobs are added and removed, never run: ticks come from poll_once
        poller = Poller(
            store or self.store,
            graph or self.graph,
            self.slack,
            interval=interval,
            stale_after=stale_after,
            admin_mention=ADMINS,
            clock=self.clock,
            scheduler=scheduler,
            pool=build_poll_pool(),
        )
        self.pollers.append(poller)
        return poller

    def start_run(self, *, outcome: str = "completed", users: int = 3, name: str = EVIL_NAME, root: bool = True) -> Run:
        """A migration accepted by Graph and recorded as RUNNING, as MigrationFlow.launch leaves it."""
        job_id = self.sim.create_job(
            name, status="validatePassed", users=users, completed_after=self.sim.clock.now() + timedelta(minutes=5)
        )
        self.sim.set_outcome(job_id, outcome)
        job = self.graph.migrate_job(job_id).job
        now = self.clock()
        root_ts = None
        if root:
            text, blocks = root_blocks.root_message(
                job=job, requester_id=REQUESTER, reason="CHG0042", started_at=now, status=job.status_label
            )
            root_ts = self.slack.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)["ts"]
        return self.store.create_run(
            job_id=job_id,
            job_name=job.name,
            channel_id=CHANNEL,
            requester_id=REQUESTER,
            reason="CHG0042",
            state=RunState.RUNNING,
            started_at=now,
            root_ts=root_ts,
            last_status=job.status_label,
            last_message=job.message,
            last_job_update=job.last_updated,
            last_seen_change_at=now,
            posted_status=job.status_label,
            posted_message=job.message,
        )

    # Reading what people see
    def root(self, run: Run) -> Message:
        ts = self.store.get_run(run.id).root_ts
        message = self.standin.message(CHANNEL, ts)
        assert message is not None
        return message

    def replies(self, run: Run) -> list[Message]:
        ts = self.store.get_run(run.id).root_ts
        return self.standin.thread(CHANNEL, ts) if ts else []

    def finals(self, run: Run) -> list[Message]:
        return [m for m in self.replies(run) if (m.metadata or {}).get("event_type") == FINAL_EVENT]

    def dms(self) -> list:
        return [c for c in self.standin.calls_to("chat.postMessage") if c.args.get("channel") == REQUESTER]

    def posts(self) -> int:
        return len(self.standin.calls_to("chat.postMessage"))

    def audit(self, run: Run, name: str) -> list[dict]:
        return [e.as_dict() for e in self.store.audit_events(AuditQuery(job_id=run.job_id)) if e.event == name]


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    try:
        yield w
    finally:
        w.close()


def body(message: Message) -> str:
    return message.text + "\n" + json.dumps(message.blocks, ensure_ascii=False)


def drive_to_end(world: World, poller: Poller, run: Run) -> None:
    for seconds in (TO_IN_PROGRESS, TO_CUTOVER, TO_END):
        world.sim.clock.advance(seconds)
        poller.poll_once(run.id)


# --------------------------------------------------------------------------- outcomes


def test_completed_run_posts_each_change_once_then_one_broadcast_final_notice(world):
    poller = world.poller()
    run = world.start_run(outcome="completed", users=4)
    poller.follow(run.id)
    assert poller.is_following(run.id)

    poller.poll_once(run.id)  # still processing: nothing to say
    assert world.replies(run) == []

    world.sim.clock.advance(TO_IN_PROGRESS)
    world.clock.advance(minutes=2)
    poller.poll_once(run.id)
    replies = world.replies(run)
    assert len(replies) == 1
    assert "`processing` → `inProgress`" in body(replies[0])
    assert "<!date^" in body(replies[0]) and "Content is syncing" in body(replies[0])
    assert not replies[0].reply_broadcast
    root = world.root(run)
    assert "`inProgress`" in body(root) and "Running for" in body(root) and "2 min" in body(root)

    world.sim.clock.advance(TO_CUTOVER)
    poller.poll_once(run.id)
    cutover = world.replies(run)[-1]
    assert "`inProgress` → `cuttingOver`" in body(cutover) and "Users are now being cut over" in body(cutover)

    world.sim.clock.advance(TO_END)
    world.clock.advance(hours=1)
    poller.poll_once(run.id)
    replies = world.replies(run)
    assert len(replies) == 3
    final = replies[-1]
    assert final.reply_broadcast and final.thread_ts == run.root_ts
    assert final.metadata == {"event_type": FINAL_EVENT, "event_payload": {"run_id": run.id}}
    text = body(final)
    assert "completed" in final.text and "4 users, none with errors" in text
    assert "*Exchange*" in text and "completed 4" in text and "Users with errors" not in text
    assert "1 h 02 min" in text
    assert "&lt;!channel&gt;" in text and "<!channel>" not in json.dumps(final.blocks)  # Graph's name escaped

    stored = world.store.get_run(run.id)
    assert stored.state == RunState.FINISHED and stored.outcome == "completed"
    assert stored.finished_at == world.clock() and stored.final_notice == "sent" and stored.final_notice_ts == final.ts
    assert not poller.is_following(run.id)
    root = world.root(run)
    assert "`completed`" in body(root) and "*Took*" in body(root) and "The outcome is in this thread" in body(root)

    dms = world.dms()
    assert len(dms) == 1 and dms[0].ok
    assert "completed" in dms[0].args["text"] and "slack.com/archives" in json.dumps(dms[0].args["blocks"])

    changes = [(e["detail"]["old"], e["detail"]["new"]) for e in world.audit(run, "status_changed")]
    assert changes == [("processing", "inProgress"), ("inProgress", "cuttingOver"), ("cuttingOver", "completed")]
    outcome = world.audit(run, "final_outcome")
    assert len(outcome) == 1 and outcome[0]["detail"]["outcome"] == "completed"
    assert outcome[0]["detail"]["requester_notified"] is True

    posts = world.posts()
    poller.poll_once(run.id)  # a finished run: no Graph call, no post
    assert world.posts() == posts


def test_completed_with_errors_lists_failed_users_with_workload_code_and_message(world):
    poller = world.poller()
    run = world.start_run(outcome="completedWithErrors", users=33)  # users 1, 4, ... 31 fail: 11 of them
    drive_to_end(world, poller, run)
    finals = world.finals(run)
    assert len(finals) == 1
    text = body(finals[0])
    assert "completed with errors" in text
    assert "33 users: 22 without errors, 11 with errors" in text
    assert "*ODSP*" in text and "completed 22" in text and "failed 11" in text
    assert "*Users with errors* (10 of 11)" in text and "…and 1 more users with errors" in text
    assert "`MIGR-003`" in text and "migration failed. Please retry user migration." in text
    assert text.count("• `") == 10
    assert "retries only the users who did not finish" in text
    assert world.store.get_run(run.id).outcome == "completedWithErrors"
    assert len(world.dms()) == 1 and "11 with errors" in world.dms()[0].args["blocks"][0]["text"]["text"]


def test_failed_run_reports_every_workload_error(world):
    poller = world.poller()
    run = world.start_run(outcome="failed", users=2)
    drive_to_end(world, poller, run)
    (final,) = world.finals(run)
    text = body(final)
    assert ":x:" in text and "failed" in final.text
    assert "2 users: 0 without errors, 2 with errors" in text
    assert "`EXCH-07`" in text and "No valid migration endpoints for the remote tenant." in text
    assert "*Exchange*" in text and "failed 2" in text
    stored = world.store.get_run(run.id)
    assert stored.state == RunState.FINISHED and stored.outcome == "failed"
    assert world.audit(run, "final_outcome")[0]["detail"]["outcome"] == "failed"


def test_cancelled_job_ends_the_run(world):
    poller = world.poller()
    run = world.start_run()
    world.sim.set_status(run.job_id, "Canceled")  # the admin guide's spelling
    poller.poll_once(run.id)
    (final,) = world.finals(run)
    assert "was cancelled" in body(final)
    assert world.store.get_run(run.id).outcome == "cancelled"


def test_job_deleted_mid_run_ends_with_job_no_longer_exists(world):
    poller = world.poller()
    run = world.start_run()
    poller.follow(run.id)
    world.sim.clock.advance(TO_IN_PROGRESS)
    poller.poll_once(run.id)
    world.sim.delete_job(run.job_id)
    poller.poll_once(run.id)
    (final,) = world.finals(run)
    assert "no longer exists" in body(final) and "HTTP 404" in body(final) and final.reply_broadcast
    stored = world.store.get_run(run.id)
    assert stored.state == RunState.FINISHED and stored.outcome == "vanished"
    assert not poller.is_following(run.id)
    assert world.sim.count("GET", "/users") == 0  # nothing to list for a job that is gone
    assert len(world.dms()) == 1


# --------------------------------------------------------------------------- quiet ticks and odd statuses


def test_no_post_no_update_and_no_database_write_when_nothing_changed(world):
    poller = world.poller()
    run = world.start_run()
    world.sim.clock.advance(TO_IN_PROGRESS)
    poller.poll_once(run.id)
    assert len(world.replies(run)) == 1

    writes: list[str] = []

    @event.listens_for(world.store.engine, "before_cursor_execute")
    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append(statement)

    world.standin.reset_calls()
    world.sim.clear_requests()
    for _ in range(5):
        world.clock.advance(minutes=1)
        poller.poll_once(run.id)
    event.remove(world.store.engine, "before_cursor_execute", record)
    assert world.standin.calls == []  # no post, no chat.update
    assert world.sim.count("GET") == 5  # exactly one Graph request per tick
    assert writes == []


def test_unknown_status_is_shown_as_it_came_and_polling_goes_on(world):
    poller = world.poller()
    run = world.start_run()
    poller.follow(run.id)
    world.sim.set_status(run.job_id, "quantumEntangled", message="Graph <b>invented</b> a status")
    poller.poll_once(run.id)
    (reply,) = world.replies(run)
    assert "`processing` → `quantumEntangled`" in body(reply)
    assert "&lt;b&gt;invented&lt;/b&gt;" in body(reply)
    assert world.store.get_run(run.id).state == RunState.RUNNING and poller.is_following(run.id)
    poller.poll_once(run.id)
    assert len(world.replies(run)) == 1

    world.sim.set_status(run.job_id, "adminActionRequired", message="Approve the batch")
    poller.poll_once(run.id)
    admin = world.replies(run)[-1]
    assert "<!subteam^S0ADMINS>" in body(admin) and "`adminActionRequired`" in body(admin)


def test_message_change_alone_gets_a_reply(world):
    poller = world.poller()
    run = world.start_run()
    world.sim.set_status(run.job_id, "processing", message="Preparing 40% of mailboxes")
    poller.poll_once(run.id)
    (reply,) = world.replies(run)
    assert "still `processing`" in body(reply) and "Preparing 40% of mailboxes" in body(reply)


def test_root_message_is_posted_first_when_it_could_not_be_posted_at_start(world):
    poller = world.poller()
    run = world.start_run(root=False)
    assert world.standin.messages(CHANNEL) == []
    world.sim.clock.advance(TO_IN_PROGRESS)
    poller.poll_once(run.id)
    (root,) = world.standin.messages(CHANNEL)
    assert world.store.get_run(run.id).root_ts == root.ts
    assert "`inProgress`" in body(root)  # the new root already shows the current status
    world.sim.clock.advance(TO_CUTOVER)
    poller.poll_once(run.id)
    assert "`inProgress` → `cuttingOver`" in body(world.replies(run)[0])


# --------------------------------------------------------------------------- trouble


def test_graph_failures_back_off_warn_once_and_say_once_when_recovered(world):
    poller = world.poller()
    run = world.start_run()
    world.sim.inject_fault("503", count=None, method="GET")
    world.sim.clear_requests()
    for _ in range(15):
        poller.poll_once(run.id)
    # Backoff: attempts on ticks 1, 2, 4 and 8 (1, then skipping 1, 3, 7 ticks).
    assert world.sim.count("GET") == 4
    warnings = [m for m in world.replies(run) if "can't reach Microsoft Graph" in body(m)]
    assert len(warnings) == 1 and len(world.replies(run)) == 1
    assert "HTTP 503" in body(warnings[0])
    stored = world.store.get_run(run.id)
    assert stored.poll_failures == 4 and stored.trouble_warned and stored.state == RunState.RUNNING

    world.sim.clear_faults()
    world.sim.clock.advance(TO_IN_PROGRESS)
    for _ in range(10):
        poller.poll_once(run.id)
    recovered = [m for m in world.replies(run) if "answers again" in body(m)]
    assert len(recovered) == 1
    assert [("answers again" in body(m), "`processing` → `inProgress`" in body(m)) for m in world.replies(run)[1:]] == [
        (True, False),
        (False, True),
    ]
    stored = world.store.get_run(run.id)
    assert stored.poll_failures == 0 and not stored.trouble_warned


@pytest.mark.parametrize("cause", ["graph_403", "credential"])
def test_auth_failures_say_the_admin_credential_needs_attention(world, cause):
    run = world.start_run()
    graph = world.graph
    if cause == "graph_403":
        world.sim.deny("get")
    else:
        graph = GraphClient(world.sim.base_url, BrokenTokens(), max_attempts=1, sleep=lambda s: None)
    poller = world.poller(graph=graph)
    for _ in range(7):
        poller.poll_once(run.id)
    (warning,) = world.replies(run)
    assert "admin credential needs attention" in body(warning) and "`migrate-bot login`" in body(warning)
    assert "<!subteam^S0ADMINS>" in body(warning)
    if cause == "credential":
        assert "refresh token expired" in body(warning)
        graph.close()


def test_slack_429_is_waited_out_and_the_reply_arrives_once(world):
    poller = world.poller()
    run = world.start_run()
    world.standin.fail_next("chat.postMessage", retry_after=0)
    world.sim.clock.advance(TO_IN_PROGRESS)
    poller.poll_once(run.id)
    (reply,) = world.replies(run)
    assert "`inProgress`" in body(reply)
    statuses = [c.http_status for c in world.standin.calls_to("chat.postMessage")][-2:]
    assert statuses == [429, 200]
    assert world.store.get_run(run.id).posted_status == "inProgress"


def test_a_post_still_rate_limited_after_retries_is_posted_on_a_later_tick(tmp_path):
    world = World(tmp_path, slack_retries=1)
    try:
        poller = world.poller()
        run = world.start_run()
        world.standin.fail_next("chat.postMessage", retry_after=0, count=2)  # the retry is limited too
        world.sim.clock.advance(TO_IN_PROGRESS)
        poller.poll_once(run.id)
        assert world.replies(run) == []
        stored = world.store.get_run(run.id)
        assert stored.posted_status == "processing" and stored.last_status == "inProgress"
        assert stored.reply_pending is None  # Slack said no: nothing to look for
        poller.poll_once(run.id)
        (reply,) = world.replies(run)
        assert "`processing` → `inProgress`" in body(reply)
        poller.poll_once(run.id)
        assert len(world.replies(run)) == 1
        assert len(world.audit(run, "status_changed")) == 1
    finally:
        world.close()


def test_stale_job_warns_once_until_it_moves_again(world):
    poller = world.poller()
    run = world.start_run()
    world.sim.clock.advance(TO_IN_PROGRESS)
    poller.poll_once(run.id)  # inProgress; cutover waits for completeAfterDateTime
    world.sim.clock.advance(60)
    world.clock.advance(hours=23)
    poller.poll_once(run.id)
    assert len(world.replies(run)) == 1
    world.clock.advance(hours=2)
    poller.poll_once(run.id)
    poller.poll_once(run.id)
    stale = [m for m in world.replies(run) if "No progress reported" in body(m)]
    assert len(stale) == 1 and "25 h 00 min" in body(stale[0]) and "<!subteam^S0ADMINS>" in body(stale[0])

    world.sim.clock.advance(TO_CUTOVER)  # it moves: the warning is re-armed
    poller.poll_once(run.id)
    assert not world.store.get_run(run.id).stale_warned
    world.clock.advance(hours=30)
    poller.poll_once(run.id)
    assert len([m for m in world.replies(run) if "No progress reported" in body(m)]) == 2


# --------------------------------------------------------------------------- restart and crashes


def test_restart_resumes_sums_up_missed_transitions_and_finishes_once(world):
    first = world.poller()
    run = world.start_run(outcome="completedWithErrors")
    other = world.start_run(outcome="completed", name="wave4")
    first.start()
    assert first.is_following(run.id) and first.is_following(other.id)
    world.sim.clock.advance(TO_IN_PROGRESS)
    first.poll_once(run.id)
    first.poll_once(other.id)
    assert len(world.replies(run)) == 1
    first.shutdown()  # the process goes away

    world.sim.clock.advance(TO_CUTOVER)  # run: inProgress -> cuttingOver while nobody watched
    second = world.poller(store=Store.from_url(world.db_url))
    second.start()
    assert second.is_following(run.id) and second.is_following(other.id)
    second.poll_once(run.id)
    replies = world.replies(run)
    assert len(replies) == 2
    assert "While I was offline" in body(replies[1]) and "`inProgress` → `cuttingOver`" in body(replies[1])
    second.poll_once(run.id)
    assert len(world.replies(run)) == 2  # said once

    world.sim.clock.advance(TO_END)
    second.poll_once(run.id)
    second.poll_once(other.id)  # missed cutover and the end: goes straight to the final notice
    second.poll_once(run.id)
    for finished in (run, other):
        assert len(world.finals(finished)) == 1
        assert world.store.get_run(finished.id).state == RunState.FINISHED
        assert not second.is_following(finished.id)
    texts = [body(m) for m in world.replies(run)]
    assert len(texts) == len(set(texts)) == 3
    assert len(world.replies(other)) == 2
    assert len(world.dms()) == 2


def test_crash_after_posting_the_final_notice_before_recording_it_sends_no_second_notice(world, monkeypatch):
    first = world.poller()
    run = world.start_run(outcome="failed")
    world.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)
    real_update = world.store.update_run

    def crash_when_recording_sent(run_id, **fields):
        if fields.get("final_notice") == "sent":
            raise Crash()
        return real_update(run_id, **fields)

    monkeypatch.setattr(world.store, "update_run", crash_when_recording_sent)
    with pytest.raises(Crash):
        first.poll_once(run.id)
    assert len(world.finals(run)) == 1
    assert world.store.get_run(run.id).final_notice == "posting"

    second = world.poller(store=Store.from_url(world.db_url))
    second.start()
    second.poll_once(run.id)
    second.poll_once(run.id)
    assert len(world.finals(run)) == 1
    stored = second.store.get_run(run.id)
    assert stored.state == RunState.FINISHED and stored.final_notice == "sent"
    assert stored.final_notice_ts == world.finals(run)[0].ts
    assert len(world.dms()) == 1
    assert len(world.standin.calls_to("conversations.replies")) >= 1
    assert len(world.audit(run, "final_outcome")) == 1


def test_crash_before_the_final_notice_went_out_posts_it_once_after_restart(world, monkeypatch):
    first = world.poller()
    run = world.start_run()
    world.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)
    real_post = world.slack.chat_postMessage

    def crash_before_sending(**kwargs):
        if (kwargs.get("metadata") or {}).get("event_type") == FINAL_EVENT:
            raise Crash()
        return real_post(**kwargs)

    monkeypatch.setattr(world.slack, "chat_postMessage", crash_before_sending)
    with pytest.raises(Crash):
        first.poll_once(run.id)
    monkeypatch.undo()
    assert world.finals(run) == [] and world.store.get_run(run.id).final_notice == "posting"

    second = world.poller(store=Store.from_url(world.db_url))
    second.poll_once(run.id)
    assert len(world.finals(run)) == 1
    assert world.store.get_run(run.id).state == RunState.FINISHED


def test_crash_after_a_status_reply_before_recording_it_posts_no_duplicate(world, monkeypatch):
    first = world.poller()
    run = world.start_run()
    world.sim.clock.advance(TO_IN_PROGRESS)
    real_update = world.store.update_run

    def crash_when_recording_posted(run_id, **fields):
        if "posted_status" in fields and fields.get("reply_pending", "x") is None:
            raise Crash()
        return real_update(run_id, **fields)

    monkeypatch.setattr(world.store, "update_run", crash_when_recording_posted)
    with pytest.raises(Crash):
        first.poll_once(run.id)
    monkeypatch.undo()
    (reply,) = world.replies(run)
    assert reply.metadata["event_type"] == UPDATE_EVENT
    assert world.store.get_run(run.id).reply_pending is not None

    second = world.poller(store=Store.from_url(world.db_url))
    second.start()
    second.poll_once(run.id)
    second.poll_once(run.id)
    assert len(world.replies(run)) == 1
    stored = world.store.get_run(run.id)
    assert stored.posted_status == "inProgress" and stored.reply_pending is None


def test_final_notice_goes_to_the_requester_when_the_channel_is_gone(world):
    world.standin.add_channel("CPRIV", "private-ops", is_private=True)
    poller = world.poller()
    run = world.start_run()
    world.store.update_run(run.id, channel_id="CPRIV", root_ts=None)
    world.standin.set_bot_member("CPRIV", False)  # the bot was removed from the private channel
    world.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)
    poller.poll_once(run.id)
    stored = world.store.get_run(run.id)
    assert stored.state == RunState.FINISHED and stored.final_notice == "dm"
    (dm,) = world.dms()
    assert "could not post the outcome in <#CPRIV>" in json.dumps(dm.args["blocks"])
    assert "3 users, none with errors" in json.dumps(dm.args["blocks"])


# --------------------------------------------------------------------------- the real scheduler


def test_real_scheduler_resumes_from_the_database_follows_new_runs_and_removes_finished_ones(world):
    resumed = world.start_run(name="resumed")
    world.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)  # ends before the bot even starts
    poller = world.poller(interval=0.1, scheduler=BackgroundScheduler(timezone=UTC))
    poller.start()
    followed = world.start_run(name="followed")
    poller.follow(followed.id)
    world.standin.wait_for(
        "chat.postMessage",
        count=1,
        timeout=5,
        predicate=lambda c: c.args.get("channel") == CHANNEL and c.args.get("reply_broadcast"),
    )
    world.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)
    world.standin.wait_for(
        "chat.postMessage", count=2, timeout=5, predicate=lambda c: c.args.get("channel") == REQUESTER
    )
    deadline = time.monotonic() + 5
    while any(poller.is_following(run.id) for run in (resumed, followed)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [job.id for job in poller.scheduler.get_jobs()] == [SWEEP_JOB_ID]  # one sweep, nothing per run
    for run in (resumed, followed):
        assert not poller.is_following(run.id)
        assert world.store.get_run(run.id).state == RunState.FINISHED
        assert len(world.finals(run)) == 1
