"""The database: one active run per job, atomic transitions, append-only audit, in-place upgrades."""

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from bot.store import JobBusy, RunState, Store, migrate_schema

JOB = "5b0c7e2a-91d4-4f0e-a3c2-7d1e9f20b611"


@pytest.fixture
def store(tmp_path):
    return Store.from_url(f"sqlite:///{tmp_path}/state/bot.db")


def new_run(store, **fields):
    return store.create_run(
        **{"job_id": JOB, "channel_id": "C1", "requester_id": "U1", "reason": "r", "state": RunState.PENDING, **fields}
    )


def test_one_active_run_per_job(store):
    first = new_run(store)
    with pytest.raises(JobBusy) as busy:
        new_run(store, requester_id="U2")
    assert busy.value.existing.id == first.id
    assert store.transition(first.id, RunState.PENDING, RunState.REJECTED)
    assert new_run(store).id != first.id  # a finished request frees the job


def test_concurrent_claims_have_one_winner(store):
    run = new_run(store)
    barrier = threading.Barrier(20)
    wins = []

    def claim(user):
        barrier.wait()
        if store.transition(run.id, RunState.PENDING, RunState.STARTING, approver_id=user):
            wins.append(user)

    threads = [threading.Thread(target=claim, args=(f"U{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert store.get_run(run.id).approver_id == wins[0]


def test_times_come_back_as_utc(store):
    from datetime import datetime, timedelta, timezone

    started = datetime(2026, 7, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))  # stored from another offset
    run = new_run(store, started_at=started)
    read = store.get_run(run.id)
    assert read.created_at == run.created_at and read.created_at.utcoffset() == timedelta(0)
    assert read.started_at == started and read.started_at.utcoffset() == timedelta(0)


def test_audit_is_append_only(store):
    store.audit("requested", job_id=JOB, actor="U1", reason="CHG1")
    events = store.audit_events()
    assert [(e.event, e.actor, e.as_dict()["detail"]) for e in events] == [("requested", "U1", {"reason": "CHG1"})]
    with pytest.raises(DBAPIError), store.engine.begin() as connection:
        connection.execute(text("UPDATE audit_events SET actor = 'U9'"))
    with pytest.raises(DBAPIError), store.engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_events"))
    assert store.audit_events()[0].actor == "U1"


def test_schema_upgrade_adds_missing_columns(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE runs (id INTEGER PRIMARY KEY, job_id VARCHAR(36), channel_id VARCHAR(32),"
                " requester_id VARCHAR(32), state VARCHAR(16))"
            )
        )
        connection.execute(
            text(f"INSERT INTO runs (job_id, channel_id, requester_id, state) VALUES ('{JOB}', 'C1', 'U1', 'running')")
        )
    migrate_schema(engine)
    store = Store(engine)
    [run] = store.runs_in(RunState.RUNNING)
    assert run.poll_failures == 0 and run.final_notice is None


def test_healthy_says_why_a_read_only_database_takes_no_write(store, tmp_path):
    assert store.healthy() is None
    read_only = Store(create_engine(f"sqlite:///file:{tmp_path}/state/bot.db?mode=ro&uri=true"))
    assert "readonly" in (read_only.healthy() or "")
