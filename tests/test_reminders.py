"""Reminders in a run's thread, each exactly once across restarts and lost answers (the clock is injected)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.rehearsal.sandbox import CHANNEL, REQUESTER
from bot.reminder_store import POSTING
from bot.store import RunState
from bot.ui.modal import CANCEL_BUTTON_ACTION
from bot.ui.reminders import RESCHEDULE_BUTTON_ACTION
from bot.workflow.reminders import REMINDER_EVENT


def dump(node) -> str:
    return json.dumps(node, ensure_ascii=False)


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


def reminders_in(world, root_ts):
    return [m for m in world.slack.thread(CHANNEL, root_ts) if (m.metadata or {}).get("event_type") == REMINDER_EVENT]


def sweep_at(world, moment):
    world.bot.reminders.clock = lambda: moment
    return world.bot.reminders.sweep()


def start(world, cutover):
    now = world.sim.clock.now()
    job_id = world.sim.create_job(
        "wave10_remind", "validatePassed", users=3, completed_after=cutover, validated_at=now - timedelta(hours=1)
    )
    view = world.open_modal(job_id)
    world.submit_modal(view, "CHG12")
    return world.wait_until(
        lambda: (r := world.run_for(job_id)) and r.state == RunState.RUNNING and r.root_ts and r, what="running"
    )


def test_both_cutover_reminders_once_across_a_restart(world):
    cutover = (world.sim.clock.now() + timedelta(days=2)).replace(microsecond=0)
    run = start(world, cutover)
    assert sweep_at(world, cutover - timedelta(hours=25)) == 0  # not yet
    assert sweep_at(world, cutover - timedelta(hours=23)) == 1
    [first] = reminders_in(world, run.root_ts)
    assert "in 24 hours" in dump(first.blocks) and f"<!date^{int(cutover.timestamp())}^" in dump(first.blocks)
    buttons = [e["action_id"] for b in first.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [RESCHEDULE_BUTTON_ACTION, CANCEL_BUTTON_ACTION]
    assert sweep_at(world, cutover - timedelta(hours=22)) == 0
    updates = len(world.slack.calls_to("views.update"))
    world.sender.block_action(CHANNEL, first.ts, RESCHEDULE_BUTTON_ACTION, user_id=REQUESTER)
    world.slack.wait_for("views.update", count=updates + 1, timeout=10)
    form = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    assert form["title"]["text"] == "Move the cutover" and form.get("submit")

    world.stop_bot()
    world.start_bot()
    assert sweep_at(world, cutover - timedelta(hours=2)) == 0  # recorded in the database: not again
    assert sweep_at(world, cutover - timedelta(minutes=50)) == 1
    world.stop_bot()
    world.start_bot()
    assert sweep_at(world, cutover - timedelta(minutes=20)) == 0
    assert sweep_at(world, cutover + timedelta(minutes=5)) == 0  # cutover time passed: nothing more
    said = [dump(m.blocks) for m in reminders_in(world, run.root_ts)]
    assert len(said) == 2 and "in 24 hours" in said[0] and "in 1 hour" in said[1]


def test_a_late_start_gets_only_the_nearest_reminder_and_a_moved_cutover_new_ones(world):
    cutover = (world.sim.clock.now() + timedelta(days=2)).replace(microsecond=0)
    run = start(world, cutover)
    assert sweep_at(world, cutover - timedelta(minutes=30)) == 1
    assert sweep_at(world, cutover - timedelta(minutes=10)) == 0
    assert ["in 1 hour" in dump(m.blocks) for m in reminders_in(world, run.root_ts)] == [True]
    moved = cutover + timedelta(days=1)
    world.bot.store.update_run(run.id, complete_after=moved)  # what the poller records after a reschedule
    assert sweep_at(world, moved - timedelta(hours=20)) == 1
    assert len(reminders_in(world, run.root_ts)) == 2


def test_a_lost_answer_is_found_in_the_thread_not_posted_twice(world):
    cutover = (world.sim.clock.now() + timedelta(days=2)).replace(microsecond=0)
    run = start(world, cutover)
    world.slack.fail_next("chat.postMessage", status=500, applied=True)  # posted, but the answer is lost
    assert sweep_at(world, cutover - timedelta(hours=23)) == 0
    [pending] = world.bot.reminders.reminders.unsettled()
    assert pending.state == POSTING
    world.stop_bot()
    world.start_bot()
    sweep_at(world, cutover - timedelta(hours=22))
    assert len(reminders_in(world, run.root_ts)) == 1
    assert world.bot.reminders.reminders.unsettled() == []


def test_validation_expiry_warning_once_for_a_validated_job(world):
    now = world.sim.clock.now()
    job_id = world.sim.create_job("wave11_validated", "submitted", users=2, completed_after=now + timedelta(days=20))
    view = world.sender.slash_command(f"validate {job_id}", user_id=REQUESTER, channel_id=CHANNEL)
    assert view.status_code == 200
    world.slack.wait_for("views.update", count=1, timeout=10)
    opened = world.slack.view(world.slack.calls_to("views.open")[-1].response["view"]["id"])
    world.sender.view_submission(opened["id"], user_id=REQUESTER, values={})
    run = world.wait_until(lambda: (r := world.run_for(job_id)) and r.root_ts and r, what="validation running")
    world.sim.clock.advance(30 + 60 + 150 + 1)
    world.bot.tracker.poll_once(run.id)
    run = world.wait_until(
        lambda: (r := world.bot.store.get_run(run.id)).state == RunState.FINISHED and r, what="validated"
    )
    assert run.outcome == "validatePassed"
    passed = run.last_job_update
    assert sweep_at(world, passed + timedelta(days=5)) == 0
    assert sweep_at(world, passed + timedelta(days=6, hours=1)) == 1
    world.stop_bot()
    world.start_bot()
    assert sweep_at(world, passed + timedelta(days=6, hours=3)) == 0
    [warning] = reminders_in(world, run.root_ts)
    assert "validation of wave11_validated expires" in dump(warning.blocks)
    assert f"/migrate {job_id}" in dump(warning.blocks)
