"""User principal names beside object ids in the final notice and ``/migrate status``: Graph's
``GET /users/{id}?$select=...`` on the simulator, 20 to a ``$batch`` (one by one where batching is unavailable),
cached with a bound, and ids only (one log line) on a 403."""

from __future__ import annotations

import logging
from datetime import timedelta

from bot.graph.directory import UserDirectory
from bot.rehearsal.sandbox import CHANNEL, REQUESTER
from bot.store import RunState
from tests.test_poller import World, body, drive_to_end  # noqa: F401 - the poller's world and helpers
from tests.test_poller import world as poller_world  # noqa: F401 - fixture

ADA = "ada.lovelace@target.example"


def user_requests(sim) -> int:
    return sum(1 for r in sim.requests if r.method == "GET" and r.path.lower().startswith("/beta/users/"))


def batch_posts(sim) -> int:
    return sum(1 for r in sim.requests if r.method == "POST" and r.path.endswith("/$batch"))


def single_user_gets(sim) -> int:
    return sum(
        1 for r in sim.requests if r.method == "GET" and r.path.lower().startswith("/beta/users/") and not r.batch_id
    )


def many_users(world, count: int) -> list[str]:
    job = world.sim.create_job("many", status="validatePassed", users=count)
    ids = [task.id.lower() for task in world.graph.list_tasks(job)]
    world.sim.clear_requests()
    return ids


def failing_user(world, run) -> str:
    return world.graph.list_tasks(run.job_id)[1].id  # the simulator fails users 1, 4, 7, ...


def test_the_final_notice_shows_upns_beside_ids(poller_world):
    world = poller_world
    poller = world.poller()
    poller.directory = UserDirectory(world.graph)
    run = world.start_run(outcome="completedWithErrors", users=5)
    failing = failing_user(world, run)
    world.sim.state.name_user(failing, ADA)
    drive_to_end(world, poller, run)
    [final] = world.finals(run)
    text = body(final)
    assert f"{ADA} (`{failing}`)" in text
    assert "@target.example (`" in text.replace(ADA, "")  # the other failing user has its derived UPN
    requests = [r for r in world.sim.requests if r.path.lower().startswith("/beta/users/")]
    assert requests and all("$select=id,userPrincipalName,displayName" in r.query for r in requests)


def test_without_the_permission_ids_only_and_one_log_line(poller_world, caplog):
    world = poller_world
    world.sim.deny("getUser")
    poller = world.poller()
    poller.directory = UserDirectory(world.graph)
    caplog.set_level(logging.WARNING, logger="bot.graph.directory")
    first = world.start_run(outcome="completedWithErrors", users=5)
    drive_to_end(world, poller, first)
    asked = user_requests(world.sim)
    assert 1 <= asked <= 2  # the two failing users, looked up together
    second = world.start_run(outcome="completedWithErrors", users=5)
    drive_to_end(world, poller, second)
    for run in (first, second):
        [final] = world.finals(run)
        assert "@target.example" not in body(final) and f"• `{failing_user(world, run)}`" in body(final)
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.graph.directory"]
    assert len(lines) == 1 and "403" in lines[0] and "User.ReadBasic.All" in lines[0]
    assert user_requests(world.sim) == asked  # after the refusal the directory stops asking for a while


def test_names_are_cached_with_a_bound(poller_world):
    world = poller_world
    job = world.sim.create_job("cache", status="validatePassed", users=3)
    ids = [task.id for task in world.graph.list_tasks(job)]
    directory = UserDirectory(world.graph, cache_size=2)
    assert set(directory.names(ids)) == set(ids)  # three at once, in one batch
    assert user_requests(world.sim) == 3 and len(directory._names) == 2  # the bound holds
    for user_id in ids:  # one by one: the order of use is known
        directory.names([user_id])
    asked = user_requests(world.sim)
    assert directory.names(ids[1:]) and user_requests(world.sim) == asked  # the two most recent: from the cache
    directory.names(ids[:1])  # the least recently used was evicted: asked again
    assert user_requests(world.sim) == asked + 1


def test_an_unknown_id_is_left_as_is(poller_world):
    directory = UserDirectory(poller_world.graph)
    assert directory.names(["00000000-0000-4000-8000-000000000000"]) == {}


def test_migrate_status_lists_upns(make_world):
    world = make_world(require_approval=False)
    job = world.sim.create_job(
        "status-names", status="validatePassed", users=4, completed_after=world.sim.clock.now() + timedelta(minutes=5)
    )
    world.sim.set_outcome(job, "completedWithErrors")
    world.bot.graph.migrate_job(job)
    world.sim.clock.advance(3600)
    failing = world.bot.graph.list_tasks(job)[1].id
    world.sim.state.name_user(failing, ADA)
    before = len(world.slack.calls_to("response_url"))
    world.sender.slash_command(f"status {job}", user_id=REQUESTER, channel_id=CHANNEL)
    [answer] = world.slack.wait_for("response_url", count=before + 1, timeout=10)[before:]
    assert f"{ADA} (`{failing}`)" in str(answer.args)
    assert world.run_for(job) is None or world.run_for(job).state != RunState.RUNNING


def test_names_for_45_users_are_read_with_3_batch_requests(poller_world):
    world = poller_world
    ids = many_users(world, 45)
    world.sim.state.name_user(ids[44], ADA)
    directory = UserDirectory(world.graph)
    names = directory.names([user_id.upper() for user_id in ids])
    assert set(names) == set(ids) and names[ids[44]] == ADA and names[ids[0]].endswith("@target.example")
    assert batch_posts(world.sim) == 3 and user_requests(world.sim) == 45 and single_user_gets(world.sim) == 0
    assert directory.names(ids) == names and batch_posts(world.sim) == 3  # then from the cache


def test_without_the_permission_one_refused_batch_then_ids_only_for_a_pause(poller_world, caplog):
    world = poller_world
    world.sim.deny("getUser")
    ids = many_users(world, 45)
    now = [0.0]
    directory = UserDirectory(world.graph, denied_pause=60, monotonic=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="bot.graph.directory")
    assert directory.names(ids) == {}
    assert batch_posts(world.sim) == 1 and user_requests(world.sim) == 20  # the other 25 would be refused too
    assert directory.names(ids) == {} and batch_posts(world.sim) == 1  # paused: nothing asked
    lines = [r.getMessage() for r in caplog.records if r.name == "bot.graph.directory"]
    assert len(lines) == 1 and "403" in lines[0] and "User.ReadBasic.All" in lines[0]
    world.sim.deny("getUser", False)  # granted later: after the pause names come without a restart
    now[0] = 61
    assert set(directory.names(ids)) == set(ids) and batch_posts(world.sim) == 4


def test_without_batching_names_are_read_one_by_one(poller_world):
    world = poller_world
    world.sim.batch_unavailable = 404
    ids = many_users(world, 45)
    unknown = "00000000-0000-4000-8000-000000000000"
    directory = UserDirectory(world.graph)
    assert set(directory.names(ids + [unknown])) == set(ids)
    assert batch_posts(world.sim) == 1 and single_user_gets(world.sim) == 46 and not world.graph.batching
    world.sim.clear_requests()
    assert directory.names([unknown]) == {} and world.sim.requests == []  # a 404 is remembered as no name
