"""The poller's sweep reads RUNNING runs 20 to a Graph JSON batch, a bounded number of batches at a time.

Same world as tests/test_poller.py (simulator, stand-in and SQLite over real HTTP); sweeps are called directly.
"""

from __future__ import annotations

import json
import threading

import pytest

from bot.workflow.poller import BATCHES_IN_FLIGHT, POLL_BATCH
from tests.test_poller import TO_CUTOVER, TO_IN_PROGRESS, World, body


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    # dozens of runs post into one channel in one sweep: these tests are about Graph reads, not Slack's pacing
    w.standin.set_rate_limits(enabled=False)
    try:
        yield w
    finally:
        w.close()


def batch_posts(world: World) -> list:
    return [r for r in world.sim.requests if r.method == "POST" and r.path.endswith("/$batch")]


def reads(world: World, job_id: str) -> int:
    return sum(1 for r in world.sim.requests if r.method == "GET" and r.path.endswith(job_id))


def test_a_sweep_reads_every_run_once_twenty_to_a_batch_and_posts_each_change_once(world):
    poller = world.poller()
    runs = [world.start_run(name=f"wave{n}", users=1) for n in range(45)]
    world.sim.clear_requests()
    poller.sweep()
    assert sorted(len(json.loads(r.body)["requests"]) for r in batch_posts(world)) == [5, 20, 20]
    assert all(reads(world, run.job_id) == 1 for run in runs)
    assert not any(r.method == "GET" and r.batch_id is None for r in world.sim.requests)  # no single GETs
    assert all(world.replies(run) == [] for run in runs)  # nothing changed yet

    world.sim.clock.advance(TO_IN_PROGRESS)
    poller.sweep()
    poller.sweep()  # nothing new: nothing posted again
    for run in runs:
        (reply,) = world.replies(run)
        assert "`processing` → `inProgress`" in body(reply)
    assert len(batch_posts(world)) == 9


def test_one_throttled_job_in_a_batch_backs_off_alone(world):
    poller = world.poller()
    runs = [world.start_run(name=f"wave{n}", users=1) for n in range(3)]
    world.sim.clock.advance(TO_IN_PROGRESS)
    world.sim.inject_fault("429", count=None, path_contains=runs[1].job_id, retry_after=1)
    poller.sweep()
    stored = [world.store.get_run(run.id) for run in runs]
    assert [s.poll_failures for s in stored] == [0, 1, 0]
    assert [len(world.replies(run)) for run in runs] == [1, 0, 1]
    world.sim.clear_faults()
    world.sim.clear_requests()
    poller.sweep()  # the throttled run's next attempt (its backoff skips no tick after one failure)
    assert world.store.get_run(runs[1].id).poll_failures == 0 and len(world.replies(runs[1])) == 1
    assert [reads(world, run.job_id) for run in runs] == [1, 1, 1]


def test_without_batching_the_sweep_reads_one_job_per_request(world):
    poller = world.poller()
    runs = [world.start_run(name=f"wave{n}", users=1) for n in range(25)]
    world.sim.batch_unavailable = 404
    world.sim.clock.advance(TO_IN_PROGRESS)
    world.sim.clear_requests()
    poller.sweep()
    assert len(batch_posts(world)) <= 2  # each in-flight group may try once before it is known
    assert all(len(world.replies(run)) == 1 for run in runs)
    world.sim.clear_requests()
    world.sim.clock.advance(TO_CUTOVER)
    poller.sweep()
    assert batch_posts(world) == [] and all(reads(world, run.job_id) == 1 for run in runs)
    assert all("`inProgress` → `cuttingOver`" in body(world.replies(run)[-1]) for run in runs)


def test_batches_in_flight_are_bounded(world, monkeypatch):
    """All BATCHES_IN_FLIGHT batches are in flight together (a barrier proves it), never more."""
    poller = world.poller()
    count = POLL_BATCH * BATCHES_IN_FLIGHT * 2
    for n in range(count):
        world.start_run(name=f"wave{n}", users=1)
    lock = threading.Lock()
    in_flight, most = [0], [0]
    together = threading.Barrier(BATCHES_IN_FLIGHT, timeout=10)
    original = world.sim._batch

    def counted(*args):
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            first_round = len(batch_posts(world)) <= BATCHES_IN_FLIGHT
        try:
            if first_round:
                together.wait()  # raises BrokenBarrierError if fewer ever run at once
            return original(*args)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(world.sim, "_batch", counted)
    world.sim.clear_requests()
    poller.sweep()
    assert len(batch_posts(world)) == count // POLL_BATCH
    assert most[0] == BATCHES_IN_FLIGHT and not together.broken
