"""The worker pool on SIGTERM: started work finishes, queued work whose Slack trigger expired is dropped."""

from __future__ import annotations

import logging
import threading

from bot.workflow import workers as workers_module
from bot.workflow.workers import Workers


def test_drain_lets_started_work_finish_and_drops_expired_queued_work(monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="bot.workflow.workers")
    monkeypatch.setattr(workers_module, "TRIGGER_TTL_SECONDS", 0.0)  # every queued trigger has expired
    pool = Workers(1, "work")
    started, release, done, ran = threading.Event(), threading.Event(), [], []
    pool.submit(lambda: (started.set(), release.wait(5), done.append("graph call")))
    assert started.wait(5)
    for number in range(5):
        pool.submit(ran.append, number)
    result = []
    drainer = threading.Thread(target=lambda: result.append(pool.drain(5)))
    drainer.start()
    release.set()  # the Graph call already sent answers
    drainer.join(10)
    assert result == [True] and done == ["graph call"] and ran == []
    assert "dropped 5 queued work task(s)" in caplog.text


def test_drain_gives_up_on_work_that_outlives_the_grace():
    pool = Workers(1, "work")
    started, release = threading.Event(), threading.Event()
    pool.submit(lambda: (started.set(), release.wait(5)))
    assert started.wait(5)
    assert pool.drain(0.1) is False
    release.set()


def test_fresh_queued_work_still_runs_while_draining():
    pool = Workers(1, "work")
    started, release, ran = threading.Event(), threading.Event(), threading.Event()
    pool.submit(lambda: (started.set(), release.wait(5)))
    assert started.wait(5)
    pool.submit(ran.set)  # queued a moment ago: its Slack trigger is still fresh
    result = []
    drainer = threading.Thread(target=lambda: result.append(pool.drain(5)))
    drainer.start()
    release.set()
    drainer.join(10)
    assert result == [True] and ran.is_set()
