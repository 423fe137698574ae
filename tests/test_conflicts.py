"""One active batch per user: a migration whose users are in another active job is refused with the job and the
users named, in the modal and right before ``migrate``; the check is cached and bounded."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from bot.graph.conflicts import BatchConflicts
from bot.rehearsal.sandbox import APPROVER, CHANNEL, REQUESTER
from bot.store import RunState
from bot.ui.approval import APPROVE_ACTION


def dump(node) -> str:
    return json.dumps(node, ensure_ascii=False)


def users(n, tag):
    return [str(uuid.uuid5(uuid.NAMESPACE_URL, f"conflict/{tag}/{i}")) for i in range(n)]


@pytest.fixture
def world(make_world):
    return make_world(require_approval=False)


def ready(world, name, people):
    now = world.sim.clock.now()
    return world.sim.create_job(
        name,
        "validatePassed",
        users=people,
        completed_after=now + timedelta(days=3),
        validated_at=now - timedelta(hours=1),
    )


def test_a_conflicting_batch_is_refused_with_the_job_and_users_named(world):
    shared = users(2, "shared")
    other = world.sim.create_job("wave12_running", "inProgress", users=[*users(3, "a"), *shared])
    mine = ready(world, "wave13_next", [*users(2, "b"), *shared])
    opened = world.open_modal(mine)  # the job at once; the other batches' users are compared after that
    view = world.wait_until(
        lambda: not (v := world.slack.view(opened["id"])).get("submit") and v, what="the conflict in the modal"
    )
    rendered = dump(view)
    assert "can't be migrated now" in rendered
    assert "wave12_running" in rendered and other in rendered and all(user in rendered for user in shared)
    assert "only one active batch" in rendered
    assert world.sim.count("POST", "/migrate") == 0

    world.sim.set_status(other, "cancelled")  # the other batch ended: its users are free again
    world.bot.flow.conflicts.forget(other)
    view = world.open_modal(mine)
    assert view.get("submit") and world.bot.flow.conflicts.find(mine) == []
    world.submit_modal(view, "CHG14")
    world.wait_until(lambda: (r := world.run_for(mine)) and r.state == RunState.RUNNING, what="migration running")
    assert world.sim.count("POST", "/migrate") == 1


def test_a_conflict_arising_after_the_modal_is_refused_before_migrate(world):
    shared = users(1, "late")
    mine = ready(world, "wave14_mine", [*users(2, "c"), *shared])
    view = world.open_modal(mine)
    assert view.get("submit")  # no conflict yet (and the job list is now cached)
    world.sim.create_job("wave15_sneaky", "processing", users=[*users(1, "d"), *shared])
    world.submit_modal(view, "CHG13")
    run = world.wait_until(lambda: (r := world.run_for(mine)) and r.state == RunState.NOT_STARTED and r, what="refused")
    told = world.wait_until(
        lambda: [e for e in world.slack.ephemerals if e.user == REQUESTER and "wave15_sneaky" in e.text], what="told"
    )
    assert shared[0] in told[0].text and "only one active batch" in told[0].text
    assert world.sim.count("POST", "/migrate") == 0 and run.root_ts is None
    [audited] = [e for e in world.bot.store.audit_events() if e.event == "batch_conflict"]
    assert "wave15_sneaky" in audited.detail and not [
        e for e in world.bot.store.audit_events() if e.event == "migrate_called"
    ]
    assert [m for m in world.slack.messages(CHANNEL)] == []


def test_the_check_is_cached_and_bounded(world):
    for n in range(50):  # three list pages of jobs
        world.sim.create_job(f"filler_{n}", "inProgress", users=users(2, f"filler{n}"))
    mine = ready(world, "wave16", users(2, "e"))
    checker = BatchConflicts(world.bot.graph, max_jobs=25)
    world.sim.clear_requests()
    assert checker.find(mine) == []
    first = len(world.sim.requests)
    lists = world.sim.count("GET", "/crossTenantMigrationJobs")
    assert lists == 2  # two pages of 20 cover max_jobs=25; the rest is not read
    assert world.sim.count("GET", "/users") <= 1 + 25
    world.sim.clear_requests()
    assert checker.find(mine) == []
    assert len(world.sim.requests) == 1 < first  # warm: only the job's own users are read again


def test_a_conflict_found_at_approval_is_refused_and_told(make_world):
    world = make_world(require_approval=True)
    shared = users(1, "approval")
    mine = ready(world, "wave20_mine", [*users(2, "f"), *shared])
    view = world.open_modal(mine)
    world.submit_modal(view, "CHG17")
    request = world.wait_until(lambda: (r := world.run_for(mine)) and r.root_ts and r, what="approval request")
    world.sim.create_job("wave21_other", "inProgress", users=shared)
    world.sender.block_action(CHANNEL, request.root_ts, APPROVE_ACTION, user_id=APPROVER)
    world.wait_until(lambda: world.run_for(mine).state == RunState.NOT_STARTED, what="not started")
    shown = world.wait_until(
        lambda: "wave21_other" in (t := dump(world.slack.message(CHANNEL, request.root_ts).blocks)) and t,
        what="the refusal on the request",
    )
    assert shared[0] in shown and "only one active batch" in shown
    assert world.sim.count("POST", "/migrate") == 0
