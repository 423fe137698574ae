"""The store and its schema on a real PostgreSQL server (TEST_DATABASE_URL), as several replicas share it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from bot.db import schema
from bot.db.schema import SchemaTooNew
from bot.rehearsal.simulator.seed import SEED_IN_PROGRESS
from bot.store import Base, JobBusy, RunState, Store, create_db_engine, migrate_schema

RUN = {"job_id": SEED_IN_PROGRESS, "channel_id": "C1", "requester_id": "U1", "reason": "r"}


@pytest.fixture
def db(pg_url):
    """The module's database, emptied for each test."""
    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return pg_url


def test_two_replicas_share_runs_and_one_active_run_per_job(db):
    first, second = Store.from_url(db), Store.from_url(db)
    run = first.create_run(**RUN, state=RunState.PENDING)
    with pytest.raises(JobBusy) as busy:
        second.create_run(**RUN, state=RunState.PENDING)
    assert busy.value.existing.id == run.id
    assert second.get_run(run.id).reason == "r"


def test_only_one_of_many_concurrent_claims_wins(db):
    stores = [Store.from_url(db) for _ in range(4)]
    run = stores[0].create_run(**RUN, state=RunState.PENDING)
    barrier = threading.Barrier(8)
    won = []

    def claim(store):
        barrier.wait()
        won.append(store.transition(run.id, RunState.PENDING, RunState.STARTING))

    threads = [threading.Thread(target=claim, args=(stores[i % 4],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(won) == [False] * 7 + [True]


def test_a_slack_delivery_is_taken_once_across_replicas(db):
    first, second = Store.from_url(db), Store.from_url(db)
    assert first.first_delivery("command:T1") is True
    assert second.first_delivery("command:T1") is False
    assert second.first_delivery("command:T2") is True


def test_a_run_is_claimed_by_one_process_at_a_time(db):
    first, second = Store.from_url(db), Store.from_url(db)
    with first.run_claim(7) as mine:
        assert mine is True
        with second.run_claim(7) as theirs:
            assert theirs is False
        with second.run_claim(8) as other:
            assert other is True
    with second.run_claim(7) as now_mine:
        assert now_mine is True


def test_the_audit_trail_is_append_only_on_postgresql(db):
    store = Store.from_url(db)
    store.audit("requested", job_id=SEED_IN_PROGRESS)
    for statement in ("UPDATE audit_events SET actor = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as connection:
            connection.execute(text(statement))
    assert len(store.audit_events()) == 1


def test_upgrade_makes_an_empty_database_current(db):
    engine = create_db_engine(db)
    assert schema.current(engine).current is None
    state = migrate_schema(engine)
    assert state.current == schema.head() and not state.adopted
    with engine.connect() as connection:
        tables = set(connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    assert {"runs", "audit_events", "bot_meta", "slack_deliveries", "token_cache", "alembic_version"} <= tables


#: Columns of ``runs`` the release before Alembic did not have (later revisions add them).
NOT_IN_THE_PREVIOUS_RELEASE = ("root_posting_at", "requester_dm", "requester_dm_channel", "complete_after")


def test_upgrade_adopts_a_database_made_by_the_previous_release(db):
    engine = create_db_engine(db)
    previous = [Base.metadata.tables[name] for name in ("runs", "audit_events", "bot_meta")]
    Base.metadata.create_all(engine, tables=previous)  # what the release before Alembic did at every start
    with engine.begin() as connection:
        for column in NOT_IN_THE_PREVIOUS_RELEASE:
            connection.execute(text(f"ALTER TABLE runs DROP COLUMN {column}"))
        connection.execute(
            text(
                "INSERT INTO runs (job_id, job_name, action, state, channel_id, root_pending, requester_id, reason,"
                " created_at, poll_failures, trouble_warned, stale_warned)"
                f" VALUES ('{SEED_IN_PROGRESS}', 'wave', 'migrate', 'running', 'C1', false, 'U1', 'r', now(), 0,"
                " false, false)"
            )
        )
    state = migrate_schema(engine)
    assert state.adopted and state.current == schema.head()
    store = Store(engine)
    [run] = store.runs_in(RunState.RUNNING)
    assert run.job_name == "wave"
    assert store.first_delivery("command:T1")  # the new revision's table is there
    with pytest.raises(JobBusy):
        store.create_run(**RUN, state=RunState.PENDING)  # the old unique index still guards the job
    assert migrate_schema(engine).current == schema.head()  # and again: nothing to do


def test_replicas_upgrading_together_do_not_race(db):
    errors = []
    barrier = threading.Barrier(3)

    def start():
        engine = create_db_engine(db)
        try:
            barrier.wait()
            migrate_schema(engine)
        except Exception as error:  # pragma: no cover - the failure this test looks for
            errors.append(error)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert schema.current(create_db_engine(db)).current == schema.head()


def test_a_schema_newer_than_this_release_is_refused(db):
    engine = create_db_engine(db)
    migrate_schema(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaTooNew, match="revision 9999, newer than this release knows"):
        Store.from_url(db)
