"""App Home: the dashboard of followed batches, published on app_home_opened and refreshed when a batch ends."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bot.rehearsal.sandbox import OUTSIDER, REQUESTER
from bot.store import RunState


def dump(node) -> str:
    return json.dumps(node, ensure_ascii=False)


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


def start(world, job_id):
    view = world.open_modal(job_id)
    world.submit_modal(view, "CHG15")
    return world.wait_until(
        lambda: (r := world.run_for(job_id)) and r.state == RunState.RUNNING and r.root_ts and r, what="running"
    )


def open_home(world, user):
    before = len(world.slack.home_versions(user))
    sent = world.sender.app_home_opened(user)
    assert sent.status_code == 200
    return world.wait_until(
        lambda: len(v := world.slack.home_versions(user)) > before and v[-1], what=f"home of {user}"
    )


def test_two_batches_and_the_dashboard_updates_when_one_ends(world):
    now = world.sim.clock.now()
    soon = world.sim.create_job(
        "wave17_soon",
        "validatePassed",
        users=6,
        completed_after=now + timedelta(minutes=20),
        validated_at=now - timedelta(hours=1),
        outcome="completedWithErrors",
    )
    later = world.sim.create_job(
        "wave18_later",
        "validatePassed",
        users=4,
        completed_after=now + timedelta(days=5),
        validated_at=now - timedelta(hours=1),
    )
    first, second = start(world, soon), start(world, later)
    home = open_home(world, REQUESTER)
    shown = dump(home["blocks"])
    assert home["type"] == "home" and "*Running* (2)" in shown
    assert "wave17_soon" in shown and "wave18_later" in shown and "`processing`" in shown
    for run in (first, second):
        assert f"p{run.root_ts.replace('.', '')}" in shown  # link to its thread
        assert f"<!date^{int(run.complete_after.timestamp())}^" in shown  # cutover, each reader's time zone
    assert shown.count("users with errors: 0") == 2

    denied = open_home(world, OUTSIDER)  # only what that person may see
    assert "wave17" not in dump(denied) and "not on the list" in dump(denied)
    outsider_versions = len(world.slack.home_versions(OUTSIDER))

    assert world.bot.home.refresh() == 0  # nothing changed: nothing published
    world.sim.clock.advance(120 + 1200 + 780 + 60)  # wave17 cuts over and ends; wave18 waits for its date
    world.bot.tracker.poll_once(first.id)
    world.wait_until(lambda: world.bot.store.get_run(first.id).state == RunState.FINISHED, what="wave17 ended")
    world.bot.tracker.poll_once(second.id)
    published = len(world.slack.home_versions(REQUESTER))
    world.bot.home.refresh()  # (the scheduler also runs it every few seconds; either one publishes)
    home = world.wait_until(
        lambda: len(v := world.slack.home_versions(REQUESTER)) > published and v[-1], what="the dashboard updated"
    )
    shown = dump(home["blocks"])
    assert "*Running* (1)" in shown and "*Ended in the last 7 days* (1)" in shown
    ended = next(b for b in home["blocks"] if "wave17_soon" in dump(b))
    assert "`completedWithErrors`" in dump(ended) and "users with errors: 2" in dump(ended)
    running = next(b for b in home["blocks"] if "wave18_later" in dump(b))
    assert "`inProgress`" in dump(running)
    assert len(world.slack.home_versions(OUTSIDER)) == outsider_versions


def test_viewers_survive_a_restart(world):
    start(world, world.sim.create_job("wave19", "validatePassed", users=2, validated_at=world.sim.clock.now()))
    open_home(world, REQUESTER)
    published = len(world.slack.home_versions(REQUESTER))
    world.stop_bot()
    world.start_bot()
    world.bot.home.refresh()  # a new process publishes once for everyone who opened the tab
    assert len(world.slack.home_versions(REQUESTER)) == published + 1
    assert "wave19" in dump(world.slack.home(REQUESTER))
