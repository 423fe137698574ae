"""Change requests (remove a user, move the cutover) follow the runs' exactly-once rules: a re-delivered submission
changes nothing, a lost answer on the request's post is looked up, a database refusal is told, a change left
``applying`` is settled from Graph, an unanswered task cancel is read back, a dropped ``views.open`` is told, and a
reminder that can't be posted any more is given up. Real HTTP to the Graph simulator and the Slack stand-in."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.change_store import ChangeState
from bot.rehearsal.sandbox import APPROVER, CHANNEL, REQUESTER
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS
from bot.rehearsal.simulator.state import parse_graph_time
from bot.reminder_store import GAVE_UP, POSTING
from bot.ui.changes import CHANGE_APPROVE_ACTION, CHANGE_REJECT_ACTION
from bot.workflow.changes import APPLYING_GRACE, CHANGE_EVENT, UNPOSTED_REQUEST_GRACE
from tests.test_exactly_once import NOT_RECORDED, RefusedWrites, after_each, told
from tests.test_reminders import reminders_in, start, sweep_at
from tests.test_users import open_reschedule, picks, reason

JOB = SEED_IN_PROGRESS  # syncing, cutover in 2 days, not followed by the bot


def dump(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def victim(world, index=0):
    return sorted(t.id for t in world.bot.graph.list_tasks(JOB))[index]


def remove_form(world, who):
    updates = len(world.slack.calls_to("views.update"))
    sent = world.sender.slash_command(f"remove {JOB} {who}", user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    return world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])


def changes(world):
    return world.bot.desk.changes.for_job(JOB)


def requested(world):
    """The one change request of JOB, once its message is posted."""
    return world.wait_until(lambda: (c := changes(world)) and c[-1].message_ts and c[-1], what="change request")


def state_of(world, change_id, state):
    return world.wait_until(
        lambda: (c := world.bot.desk.changes.get(change_id)).state == state and c, what=f"change {state}"
    )


def tagged(world):
    """Messages in the channel (and threads) tagged as a change request."""
    return [m for m in world.slack.messages(CHANNEL) if (m.metadata or {}).get("event_type") == CHANGE_EVENT]


def reschedule_picks(world, days=7):
    later = parse_graph_time(world.sim.job(JOB)["completeAfterDateTime"]) + timedelta(days=days)
    local = later.astimezone(ZoneInfo("Europe/Amsterdam")).replace(second=0, microsecond=0)
    return picks(local.strftime("%Y-%m-%d"), local.strftime("%H:%M"))


def sweep_after(world, moment):
    desk = world.bot.desk
    real = desk.clock
    desk.clock = lambda: moment
    try:
        return desk.expire_overdue()
    finally:
        desk.clock = real


# --------------------------------------------------------------------------- 1: single-use submissions


def test_a_redelivered_reschedule_submission_patches_and_posts_once(make_world, monkeypatch):
    world = make_world(require_approval=False)
    form = open_reschedule(world, JOB)
    first = world.sender.view_submission(form["id"], user_id=REQUESTER, values=reschedule_picks(world))
    [change] = world.wait_until(
        lambda: (c := changes(world)) and c[0].state == ChangeState.DONE and c, what="cutover moved"
    )
    posted = len(world.slack.messages(CHANNEL))
    handled = after_each(monkeypatch, world.bot.reschedules, "confirm")
    again, _, _ = world.sender.post(first.body)  # the same signed submission, delivered again
    assert again.status_code == 200
    assert handled.wait(10)
    assert [c.id for c in changes(world)] == [change.id]
    assert world.sim.count("PATCH") == 1
    assert len(world.slack.messages(CHANNEL)) == posted


def test_a_redelivered_remove_submission_asks_nothing_again(make_world, monkeypatch):
    world = make_world(require_approval=True)
    form = remove_form(world, victim(world))
    first = world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG20"))
    change = requested(world)
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_REJECT_ACTION, user_id=REQUESTER)  # withdrawn
    state_of(world, change.id, ChangeState.REJECTED)
    handled = after_each(monkeypatch, world.bot.removals, "confirm")
    again, _, _ = world.sender.post(first.body)
    assert again.status_code == 200
    assert handled.wait(10)
    assert [c.id for c in changes(world)] == [change.id]
    assert len(tagged(world)) == 1


# --------------------------------------------------------------------------- 2: a lost answer on the request's post


def test_a_change_request_slack_applied_but_answered_5xx_is_found_and_can_be_approved(make_world):
    world = make_world(require_approval=True)
    who = victim(world)
    form = remove_form(world, who)
    world.slack.fail_next("chat.postMessage", status=503, applied=True)
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG21"))
    change = requested(world)
    [message] = tagged(world)
    assert change.state == ChangeState.PENDING and change.message_ts == message.ts
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    state_of(world, change.id, ChangeState.DONE)
    assert world.sim.count("POST", f"/users/{who}/cancel") == 1


def test_a_change_request_whose_answer_slack_could_not_give_is_found_by_the_sweep(make_world):
    world = make_world(require_approval=True)
    form = remove_form(world, victim(world))
    world.slack.fail_next("chat.postMessage", status=503, applied=True)
    world.slack.fail_next("conversations.history", status=503)  # and Slack can't tell right away either
    handled = len(world.slack.calls_to("conversations.history"))
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG22"))
    world.slack.wait_for("conversations.history", count=handled + 1, timeout=10)
    [change] = world.wait_until(lambda: changes(world), what="change recorded")
    assert change.state == ChangeState.PENDING and change.message_ts is None
    assert sweep_after(world, change.created_at + UNPOSTED_REQUEST_GRACE + timedelta(seconds=1)) == 0
    found = world.bot.desk.changes.get(change.id)
    assert found.state == ChangeState.PENDING and found.message_ts == tagged(world)[0].ts


def test_a_change_request_never_posted_is_closed_and_no_longer_blocks_the_change(make_world):
    world = make_world(require_approval=True)
    who = victim(world)
    form = remove_form(world, who)
    world.slack.fail_next("chat.postMessage", status=503, applied=False)  # nothing posted, no answer either
    world.slack.fail_next("conversations.history", status=503)
    handled = len(world.slack.calls_to("conversations.history"))
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG23"))
    world.slack.wait_for("conversations.history", count=handled + 1, timeout=10)
    [change] = world.wait_until(lambda: changes(world), what="change recorded")
    assert sweep_after(world, change.created_at + timedelta(minutes=1)) == 0  # within the grace: left alone
    assert sweep_after(world, change.created_at + UNPOSTED_REQUEST_GRACE + timedelta(seconds=1)) == 1
    assert world.bot.desk.changes.get(change.id).state == ChangeState.EXPIRED
    assert any("could not be posted" in dump(m.blocks) for m in world.slack.messages(CHANNEL))
    form = remove_form(world, who)  # the same user can be asked for again
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG23 again"))
    world.wait_until(lambda: len(changes(world)) == 2 and changes(world)[-1].message_ts, what="second request")


# --------------------------------------------------------------------------- 3: the database, and APPLYING settled


class RefusedChangeWrites(RefusedWrites):
    """The database refuses writes to ``change_requests`` only: the checkpoint still records its decision, so the
    refusal reaches the desk."""

    def _check(self, conn, cursor, statement, parameters, context, executemany):
        if "change_requests" in statement:
            super()._check(conn, cursor, statement, parameters, context, executemany)


def test_a_change_request_the_database_could_not_record_is_told_and_nothing_is_asked(make_world):
    world = make_world(require_approval=True)
    form = remove_form(world, victim(world))
    refused = RefusedChangeWrites(world.bot.store.engine, "database or disk is full")
    refused.on = True
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG29"))
    [text] = world.wait_until(lambda: [t for t in told(world, REQUESTER) if NOT_RECORDED in t], what="told")
    assert JOB in text and "nothing was done" in text
    assert changes(world) == [] and tagged(world) == []


def test_a_change_approval_the_database_could_not_record_is_told_and_nothing_is_removed(make_world):
    world = make_world(require_approval=True)
    who = victim(world)
    form = remove_form(world, who)
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG24"))
    change = requested(world)
    refused = RefusedChangeWrites(world.bot.store.engine, "database or disk is full")
    refused.on = True
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    [text] = world.wait_until(lambda: [t for t in told(world, APPROVER) if NOT_RECORDED in t], what="told")
    assert "your approval" in text
    assert world.bot.desk.changes.get(change.id).state == ChangeState.PENDING
    assert world.sim.count("POST", "/cancel") == 0
    refused.on = False
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    state_of(world, change.id, ChangeState.DONE)


def test_a_removal_graph_made_while_the_database_refused_is_settled_done_by_the_sweep(make_world, monkeypatch):
    world = make_world(require_approval=True)
    who = victim(world)
    form = remove_form(world, who)
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason("CHG25"))
    change = requested(world)
    refused = RefusedWrites(world.bot.store.engine)
    removals = world.bot.removals
    real = removals.apply

    def apply_then_the_database_refuses(change):
        try:
            return real(change)
        finally:
            refused.on = True

    monkeypatch.setattr(removals, "apply", apply_then_the_database_refuses)
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    [text] = world.wait_until(
        lambda: [t for t in told(world, APPROVER) if "refused to record it" in t], what="approver told"
    )
    assert "Microsoft Graph made the change" in text
    refused.on = False
    applying = world.bot.desk.changes.get(change.id)
    assert applying.state == ChangeState.APPLYING and world.sim.count("POST", f"/users/{who}/cancel") == 1
    assert sweep_after(world, applying.decided_at + timedelta(minutes=1)) == 0
    assert world.bot.desk.changes.get(change.id).state == ChangeState.APPLYING  # within the grace: left alone
    sweep_after(world, applying.decided_at + APPLYING_GRACE + timedelta(seconds=1))
    assert world.bot.desk.changes.get(change.id).state == ChangeState.DONE
    assert "Confirmed by reading the batch again" in dump(world.slack.message(CHANNEL, change.message_ts).blocks)
    assert world.sim.count("POST", f"/users/{who}/cancel") == 1


def test_a_reschedule_left_applying_by_a_crash_is_settled_not_done_and_no_longer_blocks(make_world):
    world = make_world(require_approval=True)
    before = world.sim.job(JOB)["completeAfterDateTime"]
    form = open_reschedule(world, JOB)
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reschedule_picks(world))
    change = requested(world)
    decided = change.created_at + timedelta(minutes=1)
    desk = world.bot.desk
    # The process died right after the approval was recorded, before the Graph call.
    assert desk.changes.transition(change.id, ChangeState.PENDING, ChangeState.APPLYING, decided_at=decided)
    sweep_after(world, decided + APPLYING_GRACE + timedelta(seconds=1))
    assert desk.changes.get(change.id).state == ChangeState.REFUSED
    assert "change was not made" in dump(world.slack.message(CHANNEL, change.message_ts).blocks)
    assert world.sim.job(JOB)["completeAfterDateTime"] == before and world.sim.count("PATCH") == 0
    form = open_reschedule(world, JOB)  # a new reschedule of the job is possible again
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reschedule_picks(world, days=8))
    world.wait_until(lambda: len(changes(world)) == 2 and changes(world)[-1].message_ts, what="second request")


# --------------------------------------------------------------------------- 4: a task cancel without an answer


def approved_removal(world, who, why):
    form = remove_form(world, who)
    world.sender.view_submission(form["id"], user_id=REQUESTER, values=reason(why))
    change = requested(world)
    world.sender.block_action(CHANNEL, change.message_ts, CHANGE_APPROVE_ACTION, user_id=APPROVER)
    return change


def test_a_task_cancel_graph_applied_but_did_not_answer_is_reported_done(make_world):
    world = make_world(require_approval=True)
    who = victim(world)
    world.sim.inject_fault("lost", path_contains=f"/users/{who}/cancel")  # applied, answered 504
    change = approved_removal(world, who, "CHG26")
    state_of(world, change.id, ChangeState.DONE)
    assert "no longer listed" in dump(world.slack.message(CHANNEL, change.message_ts).blocks)
    assert world.sim.count("POST", f"/users/{who}/cancel") == 1


def test_a_task_cancel_graph_did_not_apply_is_reported_not_done(make_world):
    world = make_world(require_approval=True)
    who = victim(world)
    world.sim.inject_fault("503", path_contains=f"/users/{who}/cancel")
    change = approved_removal(world, who, "CHG27")
    refused = state_of(world, change.id, ChangeState.REFUSED)
    assert "still in the batch" in refused.note
    assert who in [t.id for t in world.bot.graph.list_tasks(JOB)]


def test_a_task_cancel_whose_outcome_is_unknown_is_said_and_settled_later(make_world, monkeypatch):
    world = make_world(require_approval=True)
    who = victim(world)
    world.sim.inject_fault("lost", path_contains=f"/users/{who}/cancel")
    graph = world.bot.removals.graph
    real = graph.cancel_task

    def cancel_then_graph_can_not_be_read(*args, **kwargs):
        try:
            return real(*args, **kwargs)
        finally:  # and the user can't be read back either
            world.sim.inject_fault("500", count=None, path_contains=f"/users/{who}", method="GET")

    monkeypatch.setattr(graph, "cancel_task", cancel_then_graph_can_not_be_read)
    change = approved_removal(world, who, "CHG28")
    said = world.wait_until(
        lambda: "Not confirmed" in (t := dump(world.slack.message(CHANNEL, change.message_ts).blocks)) and t,
        what="unknown said",
    )
    assert "may or may not have been removed" in said
    applying = world.bot.desk.changes.get(change.id)
    assert applying.state == ChangeState.APPLYING
    assert sweep_after(world, applying.decided_at + APPLYING_GRACE + timedelta(seconds=1)) == 0
    assert world.bot.desk.changes.get(change.id).state == ChangeState.APPLYING  # still unreadable: next sweep
    world.sim.clear_faults()
    sweep_after(world, applying.decided_at + APPLYING_GRACE + timedelta(seconds=2))
    assert world.bot.desk.changes.get(change.id).state == ChangeState.DONE
    assert world.sim.count("POST", f"/users/{who}/cancel") == 1


# --------------------------------------------------------------------------- 5: a dropped views.open


@pytest.mark.parametrize("kind", ["users", "remove", "reschedule"])
def test_a_form_whose_views_open_connection_dropped_tells_the_person(make_world, kind):
    world = make_world(require_approval=True)
    text = {"users": f"users {JOB}", "remove": f"remove {JOB} {victim(world)}", "reschedule": f"reschedule {JOB}"}
    world.slack.drop_next("views.open", applied=False)
    sent = world.sender.slash_command(text[kind], user_id=REQUESTER, channel_id=CHANNEL)
    assert sent.status_code == 200
    world.wait_until(lambda: any("did not answer" in t for t in told(world, REQUESTER)), what="told")
    assert world.slack.views == {}


# --------------------------------------------------------------------------- 6: reminders that can't be posted


def test_a_reminder_slack_refuses_for_good_is_given_up(make_world):
    world = make_world(require_approval=False)
    cutover = (world.sim.clock.now() + timedelta(days=2)).replace(microsecond=0)
    run = start(world, cutover)
    world.slack.fail_next("chat.postMessage", error="is_archived")
    assert sweep_at(world, cutover - timedelta(hours=23)) == 0
    [reminder] = world.bot.reminders.reminders.for_run(run.id)
    assert reminder.state == GAVE_UP
    posts = len(world.slack.calls_to("chat.postMessage"))
    sweep_at(world, cutover - timedelta(hours=22))
    assert len(world.slack.calls_to("chat.postMessage")) == posts  # not tried again every sweep


def test_a_reminder_whose_moment_passed_before_it_was_posted_is_given_up(make_world):
    world = make_world(require_approval=False)
    cutover = (world.sim.clock.now() + timedelta(days=2)).replace(microsecond=0)
    run = start(world, cutover)
    world.slack.fail_next("chat.postMessage", status=500, applied=False)  # not posted, the answer lost
    assert sweep_at(world, cutover - timedelta(minutes=50)) == 0
    [pending] = world.bot.reminders.reminders.unsettled()
    assert pending.state == POSTING
    sweep_at(world, cutover + timedelta(minutes=5))  # cutover passed: "in 1 hour" would mislead
    assert world.bot.reminders.reminders.unsettled() == []
    assert world.bot.reminders.reminders.for_run(run.id)[0].state == GAVE_UP
    assert reminders_in(world, run.root_ts) == []
