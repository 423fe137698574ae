"""The newest Alembic revision builds exactly the tables the models describe: a model change without its
revision (or a revision without its model) fails here, on SQLite and, in CI, on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import bot.change_store
import bot.reminder_store  # noqa: F401 - its table is part of the models
from bot.store import Base, create_db_engine, migrate_schema


def _differences(url: str) -> list:
    engine = create_db_engine(url)
    try:
        migrate_schema(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            found = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    # alembic's own bookkeeping table is not a model; index and trigger details are checked by the store tests
    return [diff for diff in found if diff[0] in ("add_table", "remove_table", "add_column", "remove_column")]


def _columns(diffs: list) -> list[str]:
    return [f"{d[0]} {d[2]}.{d[3].name}" if d[0].endswith("column") else f"{d[0]} {d[1].name}" for d in diffs]


def test_sqlite_schema_at_head_matches_the_models(tmp_path):
    diffs = _differences(f"sqlite:///{tmp_path / 'bot.db'}")
    assert [d for d in _columns(diffs) if "alembic_version" not in d] == []


def test_postgresql_schema_at_head_matches_the_models(pg_url):
    diffs = _differences(pg_url)
    assert [d for d in _columns(diffs) if "alembic_version" not in d] == []
