"""Acks first: background work waits while Slack requests are answered, but never longer than max_wait."""

from __future__ import annotations

import threading
import time

from bot.workflow.ackfirst import AckFirst
from bot.workflow.workers import Workers


def hold_request(gate: AckFirst) -> tuple[threading.Event, threading.Event, threading.Thread]:
    """A Slack request being answered until ``release`` is set; ``inside`` is set once it is in flight."""
    inside, release = threading.Event(), threading.Event()

    def answer() -> None:
        with gate.answering():
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=answer)
    thread.start()
    assert inside.wait(5)
    return inside, release, thread


def test_work_runs_at_once_when_no_request_is_in_flight():
    gate = AckFirst(max_wait=30)
    workers = Workers(1, "t", yield_to=gate)
    started = time.monotonic()
    assert workers.submit(lambda: "done").result(timeout=5) == "done"
    assert time.monotonic() - started < 5  # nowhere near max_wait
    workers.shutdown()


def test_work_waits_for_the_requests_in_flight_to_be_answered():
    gate = AckFirst(max_wait=30)
    workers = Workers(2, "t", yield_to=gate)
    answered = threading.Event()
    _, release, thread = hold_request(gate)
    seen: list[bool] = []
    future = workers.submit(lambda: seen.append(answered.is_set()))
    answered.set()
    release.set()
    thread.join(5)
    future.result(timeout=5)
    assert seen == [True]  # it started only after the request was answered
    workers.shutdown()


def test_work_waits_for_a_quiet_moment_after_the_last_answer():
    gate = AckFirst(max_wait=30, quiet=0.2)
    workers = Workers(1, "t", yield_to=gate)
    with gate.answering():
        pass
    answered = time.monotonic()
    started = workers.submit(time.monotonic).result(timeout=5)
    assert started - answered >= 0.2 - 0.01  # a gap between two requests of a burst is not quiet yet
    workers.shutdown()


def test_work_waits_no_longer_than_max_wait():
    gate = AckFirst(max_wait=0.05)
    workers = Workers(1, "t", yield_to=gate)
    _, release, thread = hold_request(gate)
    try:
        assert workers.submit(lambda: "done").result(timeout=5) == "done"  # while the request is still in flight
    finally:
        release.set()
        thread.join(5)
        workers.shutdown()


def test_an_error_inside_a_request_still_counts_it_as_answered():
    gate = AckFirst(max_wait=30)
    try:
        with gate.answering():
            raise ValueError("bad request")
    except ValueError:
        pass
    workers = Workers(1, "t", yield_to=gate)
    started = time.monotonic()
    workers.submit(lambda: None).result(timeout=5)
    assert time.monotonic() - started < 5
    workers.shutdown()
