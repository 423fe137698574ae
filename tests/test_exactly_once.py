"""Nothing twice, nothing lost (issue 10): dropped connections, slow answers, re-deliveries, crashes, a database
that refuses writes. Real HTTP to the Graph simulator and the Slack stand-in, which drops, holds or fails calls."""

from __future__ import annotations

import json
import threading

import pytest

from bot.rehearsal.sandbox import CHANNEL, REQUESTER
from bot.rehearsal.simulator.seed import SEED_VALIDATE_PASSED
from bot.store import RunState
from bot.ui.modal import ModalContext

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
    handled = after_each(monkeypatch, world.bot.flow, "confirm")
    again, _, _ = world.sender.post(first.body)  # the same signed submission, delivered again
    assert again.status_code == 200
    assert handled.wait(10)
    assert [r.id for r in world.bot.store.runs_for_job(JOB)] == [run.id]
    assert world.sim.count("POST", "/migrate") == (0 if approval else 1)
    assert len(world.slack.messages(CHANNEL)) == 1
