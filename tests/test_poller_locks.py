"""The poller's per-run locks: one per run while in use, none left behind once polls end."""

from __future__ import annotations

import threading

from bot.store import RunState
from tests.test_poller import World, world  # noqa: F401  (the fixture)


def test_locks_are_forgotten_once_no_poll_holds_them(world: World):
    poller = world.poller()
    runs = [world.start_run(outcome="completed", users=1) for _ in range(5)]
    for run in runs:
        poller.poll_once(run.id)
    poller.sweep()
    assert len(poller._locks) == 0  # before: one lock per run ever polled, kept forever


def test_a_held_lock_is_shared_until_released(world: World):
    poller = world.poller()
    run = world.start_run(users=1)
    held = poller._lock(run.id)
    with held:
        assert poller._lock(run.id) is held and len(poller._locks) == 1
        blocked = threading.Thread(target=poller.poll_once, args=(run.id,))
        blocked.start()
        blocked.join(0.2)
        assert blocked.is_alive()  # a second poll of the run waits for the holder
    blocked.join(5)
    assert not blocked.is_alive() and world.store.get_run(run.id).state == RunState.RUNNING
    del held
    assert len(poller._locks) == 0
