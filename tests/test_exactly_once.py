"""Nothing twice, nothing lost (issue 10): dropped connections, slow answers, re-deliveries, crashes, a database
that refuses writes. Real HTTP to the Graph simulator and the Slack stand-in, which drops, holds or fails calls."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.rehearsal.sandbox import APPROVER, CHANNEL, REQUESTER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.slack.web import ROOT_POST_DEADLINE
from bot.store import RunState, Store
from bot.ui.approval import APPROVE_ACTION
from bot.ui.modal import ModalContext
from bot.workflow.approvals import UNPOSTED_REQUEST_GRACE
from bot.workflow.poller import FINAL_EVENT
from tests.test_poller import CHANNEL as POLLER_CHANNEL
from tests.test_poller import REQUESTER as POLLER_REQUESTER
from tests.test_poller import TO_CUTOVER, TO_END, TO_IN_PROGRESS, Crash
from tests.test_poller import World as PollerWorld

JOB = SEED_VALIDATE_PASSED


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


def running(world, job_id=JOB):
    return world.wait_until(lambda: (r := world.run_for(job_id)) and r.state == RunState.RUNNING and r, what="running")


def context(world, job_id=JOB, action="migrate"):
    return ModalContext(CHANNEL, job_id, REQUESTER, world.slack.team_id, action=action)


def after_each(monkeypatch, obj, name: str) -> threading.Event:
    """An event set each time ``obj.name`` returns (or raises): the work a listener handed over is done."""
    done = threading.Event()
    real = getattr(obj, name)

    def spy(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:
            done.set()

    monkeypatch.setattr(obj, name, spy)
    return done


def told(world, user):
    """Everything ``user`` was shown: ephemerals and DMs."""
    return [e.text for e in world.slack.ephemerals if e.user in (user, None)] + [
        m.text for m in world.slack.messages("D" + user.lstrip("U"))
    ]


# --------------------------------------------------------------------------- 1: dropped connections


def test_root_post_whose_connection_dropped_after_slack_applied_it_is_posted_once(world):
    world.slack.drop_next("chat.postMessage", applied=True)
    world.bot.flow.start(context(world), "CHG1")  # returns once its post is answered (or not)
    run = world.run_for(JOB)
    assert run.state == RunState.RUNNING and run.root_pending
    world.bot.tracker.poll_once(run.id)  # the poller looks for the root by its metadata before posting
    world.bot.tracker.poll_once(run.id)
    run = world.run_for(JOB)
    roots = world.slack.messages(CHANNEL)
    assert len(roots) == 1 and roots[0].ts == run.root_ts
    assert len(world.slack.calls_to("chat.postMessage")) == 1  # never resent


def test_a_final_notice_whose_connection_dropped_after_slack_applied_it_is_broadcast_once(world):
    job_id = world.sim.create_job(
        "wave9", status="validatePassed", users=3, completed_after=world.sim.clock.now() + timedelta(minutes=5)
    )
    run = world.bot.flow.start(context(world, job_id), "CHG1")
    world.slack.drop_next("chat.postMessage", applied=True)
    world.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)  # the job ends: the next post is the notice
    world.bot.tracker.poll_once(run.id)
    world.bot.tracker.poll_once(run.id)
    world.wait_until(lambda: world.run_for(job_id).state == RunState.FINISHED, what="finished")
    finals = [
        m for m in world.slack.thread(CHANNEL, run.root_ts) if (m.metadata or {}).get("event_type") == FINAL_EVENT
    ]
    assert len(finals) == 1 and finals[0].reply_broadcast
    assert world.run_for(job_id).final_notice_ts == finals[0].ts


@pytest.mark.parametrize("method", ["conversations.history", "chat.update"])
def test_calls_that_change_nothing_are_still_resent_after_a_dropped_connection(world, method):
    posted = world.bot.slack.chat_postMessage(channel=CHANNEL, text="x")
    world.slack.drop_next(method, applied=True)
    if method == "chat.update":
        world.bot.slack.chat_update(channel=CHANNEL, ts=posted["ts"], text="y")
        assert world.slack.message(CHANNEL, posted["ts"]).text == "y"
    else:
        assert world.bot.slack.conversations_history(channel=CHANNEL)["messages"]
    assert [c.error for c in world.slack.calls_to(method)] == ["connection_dropped", None]


def test_views_open_whose_connection_dropped_is_not_resent_and_the_modal_still_fills(world):
    world.slack.drop_next("views.open", applied=True)
    sent = world.sender.slash_command(JOB, user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    world.slack.wait_for("views.update", count=1)
    [opened] = [c for c in world.slack.calls if c.method == "views.open"]  # once: its trigger is used
    [view_id] = list(world.slack.views)
    view = world.slack.view(view_id)
    assert view["submit"]["text"] == "Start migration" and "wave3_finance" in json.dumps(view)
    assert not any("could not open" in t for t in told(world, REQUESTER))


def test_views_open_dropped_before_slack_opened_it_tells_the_person(world):
    world.slack.drop_next("views.open", applied=False)
    world.sender.slash_command(JOB, user_id=REQUESTER, channel_id=CHANNEL)
    world.wait_until(lambda: any("did not open" in t for t in told(world, REQUESTER)), what="told")
    assert len(world.slack.calls_to("views.open")) == 1 and world.slack.views == {}


# --------------------------------------------------------------------------- 2: re-delivered submissions


@pytest.mark.parametrize("approval", [False, True])
def test_a_redelivered_modal_submission_changes_nothing(make_world, monkeypatch, approval):
    world = make_world(require_approval=approval)
    view = world.open_modal(JOB)
    first = world.submit_modal(view, "CHG1")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="first request")
    assert world.bot.store.transition(run.id, run.state, RunState.FINISHED)  # the first run ended
    handled = after_each(monkeypatch, world.bot.approvals, "confirm")
    again, _, _ = world.sender.post(first.body)  # the same signed submission, delivered again
    assert again.status_code == 200
    assert handled.wait(10)
    assert [r.id for r in world.bot.store.runs_for_job(JOB)] == [run.id]
    assert world.sim.count("POST", "/migrate") == (0 if approval else 1)
    assert len(world.slack.messages(CHANNEL)) == 1


# --------------------------------------------------------------------------- 3: a slow root post


def test_a_poll_while_the_root_post_is_in_flight_does_not_post_a_second_root(world):
    hold = world.slack.hold_next("chat.postMessage")  # Slack takes its time (a long Retry-After, a slow server)
    starting = threading.Thread(target=world.bot.flow.start, args=(context(world), "CHG1"))
    starting.start()
    assert hold.arrived.wait(10)
    run = world.run_for(JOB)
    assert run.state == RunState.RUNNING and run.root_pending and run.root_ts is None
    world.bot.tracker.poll_once(run.id)  # a tick while the post is in flight
    world.bot.tracker.poll_once(run.id)
    assert world.slack.messages(CHANNEL) == [] and world.slack.calls_to("chat.postMessage") == []
    hold.release()
    starting.join(10)
    world.bot.tracker.poll_once(run.id)
    run = world.run_for(JOB)
    [root] = world.slack.messages(CHANNEL)
    assert run.root_ts == root.ts and not run.root_pending and run.root_posting_at is None


def test_a_root_post_in_flight_when_the_process_died_is_looked_for_after_its_deadline(world):
    run = world.bot.flow.start(context(world), "CHG1")
    [root] = world.slack.messages(CHANNEL)
    # As if the process died while posting: the post went out, its answer was never recorded.
    posting_since = datetime.now(UTC) - ROOT_POST_DEADLINE + timedelta(seconds=30)
    world.bot.store.update_run(run.id, root_ts=None, root_pending=True, root_posting_at=posting_since)
    world.bot.tracker.poll_once(run.id)
    assert world.slack.calls_to("conversations.history") == [] and world.run_for(JOB).root_ts is None  # still waits
    world.bot.store.update_run(run.id, root_posting_at=posting_since - timedelta(seconds=60))
    world.bot.tracker.poll_once(run.id)
    assert world.run_for(JOB).root_ts == root.ts and len(world.slack.messages(CHANNEL)) == 1


def test_a_429_asking_for_a_longer_wait_than_a_post_may_take_fails_at_once(world):
    world.slack.fail_next("chat.postMessage", retry_after=600)
    started = time.monotonic()
    with pytest.raises(SlackApiError) as refused:
        world.bot.slack.chat_postMessage(channel=CHANNEL, text="x")
    assert refused.value.response["error"] == "ratelimited" and time.monotonic() - started < 5
    world.slack.fail_next("chat.postMessage", retry_after=1)
    assert world.bot.slack.chat_postMessage(channel=CHANNEL, text="y")["ok"]  # a short wait is waited out


# --------------------------------------------------------------------------- 8: orphan buttons


def buttons(message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def test_an_approval_request_slack_applied_but_answered_5xx_is_found_not_orphaned(make_world):
    world = make_world()
    world.slack.fail_next("chat.postMessage", status=503, applied=True)
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="request found")
    [request] = world.slack.messages(CHANNEL)
    assert run.state == RunState.PENDING and run.root_ts == request.ts and buttons(request)
    assert not any("nvite" in t or "did not take" in t for t in told(world, REQUESTER))
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)  # the buttons work
    assert running(world).id == run.id and world.sim.count("POST", "/migrate") == 1


def test_an_approval_request_slack_did_not_apply_closes_the_request_without_saying_invite_me(make_world):
    world = make_world()
    world.slack.fail_next("chat.postMessage", status=503, applied=False)
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: (r := world.run_for(JOB)) and r.state == RunState.NOT_STARTED, what="closed")
    [text] = world.wait_until(lambda: told(world, REQUESTER), what="told")
    assert "did not take the approval request" in text and "nvite" not in text
    assert world.slack.messages(CHANNEL) == []


def test_an_approval_request_whose_answer_was_lost_is_found_by_the_expiry_sweep(make_world):
    world = make_world()
    world.slack.fail_next("chat.postMessage", status=503, applied=True)
    world.slack.fail_next("conversations.history", status=503)  # and Slack can't tell right away either
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    world.wait_until(lambda: len(world.slack.calls_to("conversations.history")) == 1, what="first look")
    run = world.run_for(JOB)
    assert run.state == RunState.PENDING and run.root_ts is None
    world.bot.approvals.clock = lambda: run.created_at + UNPOSTED_REQUEST_GRACE + timedelta(seconds=1)
    assert world.bot.approvals.expire_overdue() == 0  # found, not expired
    [request] = world.slack.messages(CHANNEL)
    assert world.run_for(JOB).root_ts == request.ts and buttons(request)


def test_a_failed_update_at_approval_does_not_leave_the_buttons_while_the_job_runs(make_world, monkeypatch):
    world = make_world()
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="request")
    world.slack.fail_next("chat.update", status=500, count=2)  # "Approved…" and the root card both fail
    approved = after_each(monkeypatch, world.bot.approvals, "approve")
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    assert approved.wait(10) and world.run_for(JOB).state == RunState.RUNNING
    assert [c.error for c in world.slack.calls_to("chat.update")] == ["fatal_error", "fatal_error"]
    world.bot.tracker.poll_once(run.id)  # the next tick redraws the card
    message = world.slack.message(CHANNEL, run.root_ts)
    assert APPROVE_ACTION not in buttons(message) and "Approval needed" not in json.dumps(message.blocks)
    assert not any("nvite" in t for t in told(world, REQUESTER) + told(world, APPROVER))


def test_invite_me_only_when_slack_says_not_in_channel(make_world):
    world = make_world()
    world.slack.fail_next("chat.postMessage", error="not_in_channel")
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    [text] = world.wait_until(lambda: told(world, REQUESTER), what="told")
    assert "/invite @migrate-bot" in text


# --------------------------------------------------------------------------- 7: a crash after the approval claim


def test_a_crash_between_approval_and_migrate_is_closed_in_the_message_and_the_approver_is_told(make_world):
    world = make_world()
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="request")

    def die(job_id, **_):
        raise Crash()

    world.bot.approvals.graph = type("Dying", (), {"get_job": staticmethod(die)})()
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: "starting the migration" in world.slack.message(CHANNEL, run.root_ts).text, what="claimed")
    assert world.run_for(JOB).state == RunState.STARTING
    world.stop_bot()
    world.start_bot()  # recovery reads the job: migrate never reached Graph
    world.wait_until(lambda: world.run_for(JOB).state == RunState.NOT_STARTED, what="settled")
    message = world.wait_until(
        lambda: (m := world.slack.message(CHANNEL, run.root_ts)) and "starting" not in m.text and m, what="updated"
    )
    assert "did not start" in message.text and buttons(message) == []
    world.wait_until(lambda: any("did not start" in t for t in told(world, APPROVER)), what="approver told")
    assert any("did not start" in t for t in told(world, REQUESTER))
    assert world.sim.count("POST", "/migrate") == 0


# --------------------------------------------------------------------------- 6: the requester's DM and final_outcome


@pytest.fixture
def pworld(tmp_path):
    """The poller's world (paused scheduler, ticks by poll_once) with the DM scopes the bot asks for."""
    w = PollerWorld(tmp_path)
    w.standin.scopes = w.standin.scopes | {"im:write", "im:history"}
    try:
        yield w
    finally:
        w.close()


def dm_messages(w) -> list:
    return w.standin.messages("D" + POLLER_REQUESTER.lstrip("U"))


def ended_run(w):
    run = w.start_run()
    w.sim.clock.advance(TO_IN_PROGRESS + TO_CUTOVER + TO_END)
    return run


def restarted(w):
    poller = w.poller(store=Store.from_url(w.db_url))
    poller.start()
    return poller


def assert_finished_once(w, run):
    stored = w.store.get_run(run.id)
    assert stored.state == RunState.FINISHED and stored.requester_dm == "sent"
    assert len(dm_messages(w)) == 1 and dm_messages(w)[0].metadata["event_payload"]["run_id"] == run.id
    [event] = w.audit(run, "final_outcome")
    assert event["detail"]["requester_notified"] is True
    assert len(w.finals(run)) == 1


def test_a_crash_before_the_dm_went_out_sends_it_and_the_final_event_once_after_restart(pworld, monkeypatch):
    first = pworld.poller()
    run = ended_run(pworld)
    real_post = pworld.slack.chat_postMessage

    def die_at_the_dm(**kwargs):
        if kwargs.get("channel") != POLLER_CHANNEL:
            raise Crash()
        return real_post(**kwargs)

    monkeypatch.setattr(pworld.slack, "chat_postMessage", die_at_the_dm)
    with pytest.raises(Crash):
        first.poll_once(run.id)
    monkeypatch.undo()
    assert dm_messages(pworld) == [] and pworld.store.get_run(run.id).state == RunState.RUNNING
    second = restarted(pworld)
    second.poll_once(run.id)
    second.poll_once(run.id)
    assert_finished_once(pworld, run)


def test_a_crash_after_the_dm_went_out_before_it_was_recorded_sends_no_second_dm(pworld, monkeypatch):
    first = pworld.poller()
    run = ended_run(pworld)
    real_update = pworld.store.update_run

    def die_when_recording_the_dm(run_id, **fields):
        if fields.get("requester_dm") == "sent":
            raise Crash()
        return real_update(run_id, **fields)

    monkeypatch.setattr(pworld.store, "update_run", die_when_recording_the_dm)
    with pytest.raises(Crash):
        first.poll_once(run.id)
    monkeypatch.undo()
    assert len(dm_messages(pworld)) == 1
    second = restarted(pworld)
    second.poll_once(run.id)
    second.poll_once(run.id)
    assert_finished_once(pworld, run)
    assert pworld.standin.calls_to("conversations.history")  # it looked instead of sending again


def test_a_crash_after_the_dm_before_finishing_writes_one_final_event_and_no_second_dm(pworld, monkeypatch):
    first = pworld.poller()
    run = ended_run(pworld)
    real_transition = pworld.store.transition

    def die_when_finishing(run_id, from_states, to_state, **fields):
        if to_state == RunState.FINISHED:
            raise Crash()
        return real_transition(run_id, from_states, to_state, **fields)

    monkeypatch.setattr(pworld.store, "transition", die_when_finishing)
    with pytest.raises(Crash):
        first.poll_once(run.id)
    monkeypatch.undo()
    finished_at = pworld.store.get_run(run.id).finished_at
    pworld.clock.advance(minutes=7)  # the restart comes later: the run's end time stays when it ended
    second = restarted(pworld)
    second.poll_once(run.id)
    assert_finished_once(pworld, run)
    assert pworld.store.get_run(run.id).finished_at == finished_at


# --------------------------------------------------------------------------- 5: the database refuses writes


class RefusedWrites:
    """Makes the bot's database refuse every write while ``on`` (a full disk, a read-only file, a lock held for
    longer than the busy timeout all reach the bot as this OperationalError)."""

    def __init__(self, engine, reason: str = "attempt to write a readonly database") -> None:
        self.on = False
        self.reason = reason
        event.listen(engine, "before_cursor_execute", self._check)

    def _check(self, conn, cursor, statement, parameters, context, executemany):
        if self.on and statement.lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            raise OperationalError(statement, parameters, sqlite3.OperationalError(self.reason))


NOT_RECORDED = "could not record"


def test_an_approval_the_database_could_not_record_is_answered_and_nothing_starts(make_world):
    world = make_world()
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    run = world.wait_until(lambda: (r := world.run_for(JOB)) and r.root_ts and r, what="request")
    refused = RefusedWrites(world.bot.store.engine, "database or disk is full")
    refused.on = True
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)
    [text] = world.wait_until(lambda: [t for t in told(world, APPROVER) if NOT_RECORDED in t], what="told")
    assert "your approval" in text and "nothing was done" in text
    assert world.run_for(JOB).state == RunState.PENDING and world.sim.count("POST", "/migrate") == 0
    refused.on = False
    world.sender.block_action(CHANNEL, run.root_ts, APPROVE_ACTION, user_id=APPROVER)  # works once it can record
    assert running(world).approver_id == APPROVER


def test_a_submission_the_database_could_not_record_is_answered_and_nothing_starts(world):
    view = world.open_modal(JOB)
    refused = RefusedWrites(world.bot.store.engine)
    refused.on = True
    world.submit_modal(view, "CHG1")
    [text] = world.wait_until(lambda: [t for t in told(world, REQUESTER) if NOT_RECORDED in t], what="told")
    assert JOB in text and "nothing was done" in text
    assert world.bot.store.runs_for_job(JOB) == [] and world.sim.count("POST", "/migrate") == 0


def test_readyz_and_store_healthy_reflect_a_database_that_takes_no_writes(world):
    assert world.bot.store.healthy() is None
    assert httpx.get(world.server.url + "/readyz").json()["database"] == "ok"
    path = world.bot_settings.resolved_database_url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert "locked" in world.bot.store.healthy(timeout=0.2)
        answer = httpx.get(world.server.url + "/readyz", timeout=10)
        assert answer.status_code == 503 and answer.json()["ready"] is False and "locked" in answer.json()["database"]
        assert httpx.get(world.server.url + "/healthz", timeout=10).status_code == 200  # liveness: the process answers
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert httpx.get(world.server.url + "/readyz").status_code == 200


def test_a_run_graph_accepted_while_the_database_refused_is_settled_when_it_takes_writes(world, monkeypatch):
    refused = RefusedWrites(world.bot.store.engine)
    real_migrate = world.bot.graph.migrate_job
    accepted_at = []

    def migrate_then_the_disk_fills(job_id, **kwargs):
        result = real_migrate(job_id, **kwargs)
        accepted_at.append(datetime.now(UTC))
        refused.on = True
        return result

    monkeypatch.setattr(world.bot.graph, "migrate_job", migrate_then_the_disk_fills)
    view = world.open_modal(JOB)
    world.submit_modal(view, "CHG1")
    [text] = world.wait_until(lambda: [t for t in told(world, REQUESTER) if "accepted" in t], what="told")
    assert "refused to record" in text
    assert world.run_for(JOB).state == RunState.STARTING and world.slack.messages(CHANNEL) == []
    refused.on = False
    writable_at = datetime.now(UTC)
    run = world.wait_until(lambda: (r := world.run_for(JOB)).root_ts and r, timeout=5, what="settled")
    assert run.state == RunState.RUNNING and run.started_at <= writable_at  # the time Graph accepted it
    assert abs((run.started_at - accepted_at[0]).total_seconds()) < 1
    assert world.sim.count("POST", "/migrate") == 1 and len(world.slack.messages(CHANNEL)) == 1
    called = [e for e in world.bot.store.audit_events() if e.event == "migrate_called"]
    assert len(called) == 1 and called[0].as_dict()["detail"]["outcome"] == "accepted"
