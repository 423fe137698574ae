"""Leadership on a real PostgreSQL server: one leader, takeover when it goes, SQLite's single process leads."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text

from bot.db.leader import AdvisoryLeader, SoleLeader, leadership_for
from bot.store import create_db_engine


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def leaders(pg_url):
    made: list[AdvisoryLeader] = []
    engine = create_db_engine(pg_url)

    def make(**kwargs) -> AdvisoryLeader:
        leader = AdvisoryLeader(engine, key=0x5EED, retry=0.2, **kwargs)
        made.append(leader)
        return leader

    yield make
    for leader in made:
        leader.release()
    engine.dispose()


def test_exactly_one_replica_leads(leaders):
    replicas = [leaders() for _ in range(3)]
    for replica in replicas:
        replica.start()
    time.sleep(0.5)  # several retry periods: followers keep trying and must keep failing
    assert [replica.is_leader for replica in replicas] == [True, False, False]


def test_a_follower_takes_over_when_the_leader_releases(leaders):
    elected = threading.Event()
    first, second = leaders(), leaders(on_elected=elected.set)
    first.start()
    second.start()
    assert first.is_leader and not second.is_leader
    released = time.monotonic()
    first.release()
    assert not first.is_leader  # at once
    assert elected.wait(5)
    took = wait_for(lambda: second.is_leader, what="takeover") - released
    assert took < 1.0  # one retry period (0.2 s) and a round trip


def test_a_leader_whose_session_dies_stops_leading_and_a_follower_takes_over(leaders, pg_url):
    first, second = leaders(), leaders()
    first.start()
    second.start()
    assert first.is_leader
    engine = create_db_engine(pg_url)
    with engine.begin() as connection:  # the server ends the leader's session (as when its host vanishes)
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND objid = :key AND granted",
            ),
            {"key": 0x5EED},
        )
    engine.dispose()
    wait_for(lambda: second.is_leader, what="takeover")
    wait_for(lambda: not first.is_leader, what="the old leader to notice")
    time.sleep(0.5)
    assert second.is_leader and not first.is_leader


def test_sqlite_has_one_process_and_it_always_leads(tmp_path):
    called = []
    leader = leadership_for(create_db_engine(f"sqlite:///{tmp_path}/bot.db"), on_elected=lambda: called.append(1))
    assert isinstance(leader, SoleLeader)
    leader.start()
    assert leader.is_leader and called == [1]
